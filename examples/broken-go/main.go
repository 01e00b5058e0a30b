// Command broken does not compile: it exists so tests (and curious users) can
// see how Strata reports a failed build.
package main

func main() {
	thisFunctionDoesNotExist()
}
