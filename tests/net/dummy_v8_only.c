/* A library exporting only ncclNetPlugin_v8. Its table is never read: the
 * loader must refuse it by symbol name alone (a v8 table cast to v7 reads
 * regMr's size_t argument as int). The contents are deliberately junk. */
struct tcpx_dummy_v8_table {
  const char* name;
  void* slots[24];
};
struct tcpx_dummy_v8_table ncclNetPlugin_v8 = {"dummy-v8-only", {0}};
