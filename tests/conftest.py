import matplotlib

# Plots render off-screen in the test process. (Not via the MPLBACKEND variable: nbval's
# kernels would inherit it and stop displaying figures.)
matplotlib.use("Agg")


def pytest_ignore_collect(collection_path, config):
    """Plain `pytest` skips tests/robustness (minutes of whole-series runs); `make test-robust` names it."""
    if collection_path.name == "robustness" and not any("robustness" in str(arg) for arg in config.args):
        return True
    return None
