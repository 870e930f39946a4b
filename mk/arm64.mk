# mk/arm64.mk - make test-arm64 (included by the Makefile): the ARM64 tests
# of the suite alone (arm64/*: the unit tests and the stress test
# cross-compiled with gcc-aarch64-linux-gnu into BUILD/arm64 and run under
# qemu-user with 4 KiB and 64 KiB pages; tests/arm64/run.sh).  make test
# runs them too.
.PHONY: test-arm64
test-arm64:
	@TESTS='^arm64/' sh tests/run.sh $(BUILD)
