package guest

// sysFinitModule is finit_module(2) on arm64.
const sysFinitModule = 273
