import matplotlib

# Plots render off-screen in the test process. (Not via the MPLBACKEND variable: nbval's
# kernels would inherit it and stop displaying figures.)
matplotlib.use("Agg")
