"""A USSD application on anysd (PyPI) behind Flask, in Africa's Talking's convention, as such apps are written:
the gateway's form POST (sessionId, phoneNumber, text) goes to anysd's NavigationController, whose
"CON ..." / "END ..." answer is the reply. anysd keeps its state in Redis (config.yaml, ANYSD_CONFIG_FILE).

    python serve.py HOST PORT
"""

import sys

from anysd import NavigationController
from flask import Flask, request
from menu import home

app = Flask(__name__)


@app.post("/ussd")
def ussd():
    navigator = NavigationController(home, request.form["phoneNumber"], request.form["sessionId"],
                                     request.form.get("text", ""))
    return navigator.navigate(), 200, {"Content-Type": "text/plain"}


if __name__ == "__main__":
    app.run(host=sys.argv[1], port=int(sys.argv[2]))
