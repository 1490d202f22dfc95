# rasrun: run HEC-RAS plans on pools of workers.
#
#   make deps            install build and test dependencies (Debian, apt-get)
#   make                 build bin/rasrun and the simulated HEC-RAS engine
#   make test            run every test (LuaUnit, through bin/rasrun)
#   make SANITIZE=1 test the same under AddressSanitizer + UBSan
#   make bench           benchmarks (not tests): dispatch overhead, SFTP staging
#   make install PREFIX=/usr/local

PREFIX  ?= /usr/local
CC      ?= gcc
PKGS    := lua5.4 hdf5 libcjson libssh2 libcurl libedit libcrypto
VERSION := 0.1.0

# snprintf into fixed message buffers truncates by design; paths that must
# not be cut are checked where they are built. Hence -Wno-format-truncation.
OPT      ?= -O2 -g
CFLAGS   := -std=c11 -D_GNU_SOURCE $(OPT) -Wall -Wextra -Werror -Wshadow \
            -Wno-missing-field-initializers -Wno-format-truncation \
            $(shell pkg-config --cflags $(PKGS)) -DRASRUN_VERSION='"$(VERSION)"'
LDLIBS   := $(shell pkg-config --libs $(PKGS)) -lpthread -lm
LDFLAGS  :=

ifeq ($(SANITIZE),1)
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif

BUILD   := build
SRC     := $(wildcard src/*.c)
OBJ     := $(SRC:src/%.c=$(BUILD)/%.o)
FAKE_SRC := $(wildcard tests/fake-ras/*.c)
SIM     := $(BUILD)/hecras-sim

# The simulated HEC-RAS install folders: one per engine kind, laid out like real ones.
SIM_LINUX   := $(SIM)/linux-6.6
SIM_WINDOWS := $(SIM)/windows-6.6

.PHONY: all deps test test-fast bench install uninstall clean sim valgrind

all: bin/rasrun sim

# Objects are rebuilt when the compiler flags change (e.g. SANITIZE=1 <-> 0).
$(BUILD)/flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(CFLAGS) $(LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(LDFLAGS)' > $@
FORCE:

$(BUILD)/%.o: src/%.c $(wildcard src/*.h) $(BUILD)/flags
	@mkdir -p $(BUILD)
	@echo "CC $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

bin/rasrun: $(OBJ)
	@mkdir -p bin
	@echo "LD $@"
	@$(CC) $(LDFLAGS) -o $@ $(OBJ) $(LDLIBS)

bin/fake-ras: $(FAKE_SRC) $(wildcard tests/fake-ras/*.h) $(BUILD)/flags
	@mkdir -p bin
	@echo "CC $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(FAKE_SRC) $(shell pkg-config --libs hdf5) -lm

# Crafted HDF5 files for the tests (tests/h5craft).
$(BUILD)/h5craft: tests/h5craft/h5craft.c tests/fake-ras/h5out.c tests/fake-ras/h5out.h $(BUILD)/flags
	@echo "CC $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ tests/h5craft/h5craft.c tests/fake-ras/h5out.c \
		$(shell pkg-config --libs hdf5) -lm

# Runs a command where pidfd_open fails, as on kernels before 5.3 (tests/nopidfd).
$(BUILD)/nopidfd: tests/nopidfd/nopidfd.c $(BUILD)/flags
	@echo "CC $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ tests/nopidfd/nopidfd.c

# A library that kills its process at a chosen swap of files (tests/killat).
# Without the sanitizers: it is preloaded into a sanitized rasrun too.
$(BUILD)/killat.so: tests/killat/killat.c
	@echo "CC $@"
	@mkdir -p $(BUILD)
	@$(CC) -std=c11 -O2 -Wall -Wextra -Werror -fPIC -shared -o $@ tests/killat/killat.c -ldl

sim: $(SIM)/.stamp
$(SIM)/.stamp: bin/fake-ras
	@echo "SIM $(SIM)"
	@rm -rf $(SIM_LINUX) $(SIM_WINDOWS)
	@mkdir -p $(SIM_LINUX)/bin $(SIM_LINUX)/libs/mkl $(SIM_LINUX)/libs/rhel_8 $(SIM_WINDOWS)
	@for e in RasUnsteady RasGeomPreprocess RasSteady; do cp bin/fake-ras $(SIM_LINUX)/bin/$$e; done
	@cp bin/fake-ras $(SIM_WINDOWS)/Ras.exe
	@cp bin/fake-ras $(SIM)/fake-ras
	@touch $@

deps:
	tests/install-deps

test: all $(BUILD)/h5craft $(BUILD)/nopidfd $(BUILD)/killat.so
	tests/run

# Only the tests that need no root, namespaces or network (quick edit-test loop).
test-fast: all $(BUILD)/h5craft $(BUILD)/nopidfd $(BUILD)/killat.so
	RASRUN_TEST_FAST=1 tests/run

valgrind: all
	tests/valgrind-core

bench: all
	tests/bench/run

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/rasrun/lua/rasrun \
	           $(DESTDIR)$(PREFIX)/share/rasrun/recipes $(DESTDIR)$(PREFIX)/share/doc/rasrun/docs \
	           $(DESTDIR)$(PREFIX)/share/doc/rasrun/tests/fake-ras
	install -m 755 bin/rasrun $(DESTDIR)$(PREFIX)/bin/rasrun
	cp -R lua/. $(DESTDIR)$(PREFIX)/share/rasrun/lua/
	cp -R recipes/. $(DESTDIR)$(PREFIX)/share/rasrun/recipes/
	rm -rf $(DESTDIR)$(PREFIX)/share/rasrun/hecras-sim
	cp -R $(SIM) $(DESTDIR)$(PREFIX)/share/rasrun/hecras-sim
	rm -f $(DESTDIR)$(PREFIX)/share/rasrun/hecras-sim/.stamp
	# laid out as in the source tree, so that the README's links lead somewhere
	cp README.md $(DESTDIR)$(PREFIX)/share/doc/rasrun/
	cp -R docs/. $(DESTDIR)$(PREFIX)/share/doc/rasrun/docs/
	cp tests/fake-ras/README.md $(DESTDIR)$(PREFIX)/share/doc/rasrun/tests/fake-ras/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/rasrun
	rm -rf $(DESTDIR)$(PREFIX)/share/rasrun $(DESTDIR)$(PREFIX)/share/doc/rasrun

clean:
	rm -rf $(BUILD) bin
