pytest_plugins = ["tests.support.ci_honesty", "tests.support.postgres"]
