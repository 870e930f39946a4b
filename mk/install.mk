# mk/install.mk - installing alloy as a C library (included by the Makefile).
#
#   make install   [PREFIX=/usr/local] [DESTDIR=] [BINDIR=] [LIBDIR=]
#                  [INCLUDEDIR=] [MANDIR=] [PKGCONFIGDIR=]
#   make uninstall (the same variables)
#
# What goes where (GNU conventions; DESTDIR is prepended to every path):
#   LIBDIR      liballoy.so.MAJOR.MINOR.PATCH, liballoy.so.MAJOR -> it (the
#               soname), liballoy.so -> liballoy.so.MAJOR (for -lalloy),
#               liballoy.a, liballoy_core.a (the prefixed API only)
#   PKGCONFIGDIR alloy.pc (pkg-config --cflags --libs alloy)
#   INCLUDEDIR  alloy.h, and alloy/jemalloc/jemalloc.h: alloy's declaration of
#               jemalloc's API, out of the way of libjemalloc-dev's
#               <jemalloc/jemalloc.h> (alloy.pc adds -I$(INCLUDEDIR)/alloy)
#   BINDIR      the alloy launcher, which preloads LIBDIR/liballoy.so.MAJOR
#   MANDIR      man1/alloy.1 (the launcher), man3/alloy.3 (the library)
# The version is include/alloy.h's (sources.mk: ALLOY_VERSION).

PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
MANDIR       ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL      ?= install

ALLOY_REALNAME := liballoy.so.$(ALLOY_VERSION)
# The launcher for the installed tree: it knows where the library is.
INSTALL_LAUNCHER := $(BUILD)/install/alloy
INSTALL_FILES := $(BUILD)/liballoy.so $(BUILD)/liballoy.a $(BUILD)/liballoy_core.a \
                 $(INSTALL_LAUNCHER) $(BUILD)/install/alloy.pc

.PHONY: install install-files uninstall FORCE
install-files: $(INSTALL_FILES)

# Rebuilt at every install: LIBDIR may differ from the last one.
$(INSTALL_LAUNCHER): $(TOOL_SRC) $(wildcard tools/*.h) include/alloy.h FORCE
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -Iinclude -O2 -g -D_GNU_SOURCE \
	  -DALLOY_LIBDIR='"$(LIBDIR)"' -o $@ $(TOOL_SRC) -lm

$(BUILD)/install/alloy.pc: mk/alloy.pc.in include/alloy.h FORCE
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(ALLOY_VERSION)|g' $< >$@

install: $(INSTALL_FILES)
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR) \
	  $(DESTDIR)$(INCLUDEDIR)/alloy/jemalloc $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	$(INSTALL) -m 644 $(BUILD)/liballoy.so $(DESTDIR)$(LIBDIR)/$(ALLOY_REALNAME)
	ln -sf $(ALLOY_REALNAME) $(DESTDIR)$(LIBDIR)/$(ALLOY_SONAME)
	ln -sf $(ALLOY_SONAME) $(DESTDIR)$(LIBDIR)/liballoy.so
	$(INSTALL) -m 644 $(BUILD)/liballoy.a $(BUILD)/liballoy_core.a $(DESTDIR)$(LIBDIR)/
	$(INSTALL) -m 644 $(BUILD)/install/alloy.pc $(DESTDIR)$(PKGCONFIGDIR)/alloy.pc
	$(INSTALL) -m 644 include/alloy.h $(DESTDIR)$(INCLUDEDIR)/alloy.h
	$(INSTALL) -m 644 include/jemalloc/jemalloc.h $(DESTDIR)$(INCLUDEDIR)/alloy/jemalloc/jemalloc.h
	$(INSTALL) -m 755 $(INSTALL_LAUNCHER) $(DESTDIR)$(BINDIR)/alloy
	$(INSTALL) -m 644 man/alloy.1 $(DESTDIR)$(MANDIR)/man1/alloy.1
	$(INSTALL) -m 644 man/alloy.3 $(DESTDIR)$(MANDIR)/man3/alloy.3

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(ALLOY_REALNAME) $(DESTDIR)$(LIBDIR)/$(ALLOY_SONAME) \
	  $(DESTDIR)$(LIBDIR)/liballoy.so $(DESTDIR)$(LIBDIR)/liballoy.a $(DESTDIR)$(LIBDIR)/liballoy_core.a \
	  $(DESTDIR)$(PKGCONFIGDIR)/alloy.pc $(DESTDIR)$(INCLUDEDIR)/alloy.h \
	  $(DESTDIR)$(INCLUDEDIR)/alloy/jemalloc/jemalloc.h $(DESTDIR)$(BINDIR)/alloy \
	  $(DESTDIR)$(MANDIR)/man1/alloy.1 $(DESTDIR)$(MANDIR)/man3/alloy.3
	-rmdir $(DESTDIR)$(INCLUDEDIR)/alloy/jemalloc $(DESTDIR)$(INCLUDEDIR)/alloy 2>/dev/null

FORCE:
