/* A shared library that is not an ncclNet plugin at all: loading it must fail
 * with a message naming the missing ncclNetPlugin_v7 symbol. */
int tcpx_dummy_not_a_plugin(void) { return 42; }
