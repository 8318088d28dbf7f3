"""The menu, written the way anysd's README builds one: forms of questions, a validator, a navigation tree."""

from anysd import FormFlow, NavigationMenu

airtime_questions = {
    "1": {"name": "AIRTIME_AMOUNT", "menu": "CON Enter amount (5-500)"},
    "2": {"name": "CONFIRMATION", "menu": "CON Buy {AIRTIME_AMOUNT} EUR airtime?\n1. Confirm\n0. Back"},
    "3": {"name": "DONE", "menu": "END Airtime of {AIRTIME_AMOUNT} EUR sent. Thank you!"},
}
balance_questions = {
    "1": {"name": "PIN", "menu": "CON Enter your PIN"},
    "2": {"name": "DONE", "menu": "END Your balance is 1,250.00 EUR"},
}


def airtime_validator(current_step, last_input, **kwargs):
    if current_step == 1:
        return last_input.isnumeric() and 5 <= int(last_input) <= 500, None
    if current_step == 2:
        return last_input in ("1", "0"), None
    return True, None


def balance_validator(current_step, last_input, **kwargs):
    if current_step == 1:
        return last_input.isnumeric() and len(last_input) == 4, None
    return True, None


home = NavigationMenu(name="home", title="MyBank")
balance = NavigationMenu(name="balance", title="Balance", parent=home,
                         next_form=FormFlow(form_questions=balance_questions, step_validator=balance_validator))
airtime = NavigationMenu(name="airtime", title="Buy airtime", parent=home,
                         next_form=FormFlow(form_questions=airtime_questions, step_validator=airtime_validator))
