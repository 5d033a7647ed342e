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

# Builds the library and the built-in plugin it loads, and links
# ./libuccl_engine.so to it (the plugin is found beside the real file).
libuccl_engine.so: configure
	cmake --build $(BUILD) --target uccl_engine tcpx_net_tcp
	ln -sf $(BUILD)/lib/libuccl_engine.so libuccl_engine.so

test: all
	ctest --test-dir $(BUILD) --output-on-failure

install: all
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) libuccl_engine.so
