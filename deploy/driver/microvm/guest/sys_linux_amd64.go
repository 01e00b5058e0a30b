package guest

// sysFinitModule is finit_module(2) on amd64.
const sysFinitModule = 313
