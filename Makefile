# Thin wrapper over CMake, kept so the seed's `make USE_TCPX=1 libuccl_engine.so`
# works. USE_TCPX is accepted for compatibility: every build can load Google's
# TCPX plugin at run time (TCPX_NET_PLUGIN=/path/libnccl-net-tcpx.so); the
# built-in TCP plugin is the default transport.
BUILD ?= build
USE_TCPX ?= 1
CMAKE_FLAGS ?=

.PHONY: all configure test install clean libuccl_engine.so

all: configure
	cmake --build $(BUILD)

configure:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

# Builds the library, the core it links (libtcpx.so) and the built-in plugin
# it loads, and links ./libuccl_engine.so* (the SONAME a program records) and
# ./libtcpx.so* to them: the loader looks for the core beside the path
# libuccl_engine.so was loaded from (RPATH $ORIGIN); the plugin is found
# beside the core's real file.
libuccl_engine.so: configure
	cmake --build $(BUILD) --target uccl_engine tcpx_net_tcp
	for f in $(BUILD)/lib/libuccl_engine.so* $(BUILD)/lib/libtcpx.so*; do ln -sf $$f .; done

test: all
	ctest --test-dir $(BUILD) --output-on-failure

install: all
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) libuccl_engine.so* libtcpx.so*
