# history_track: PGXS build.
#   make                 build the install script from src/*.sql
#   make install         install into the PostgreSQL that $(PG_CONFIG) belongs to
#   make installcheck    run the pg_regress suite (sql/, expected/) against a running server
#   make dist            the PGXN distribution zip, from git

EXTENSION  = history_track
# The version is written once, in the control file.
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\(.*\)'/\1/p" $(EXTENSION).control)

PG_CONFIG ?= pg_config
PG_MAJOR  := $(shell $(PG_CONFIG) --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
SUPPORTED_MAJORS = 14 15 16 17 18
ifeq ($(filter $(PG_MAJOR),$(SUPPORTED_MAJORS)),)
$(error history_track supports PostgreSQL $(SUPPORTED_MAJORS); $(PG_CONFIG) belongs to PostgreSQL "$(PG_MAJOR)")
endif

# The extension's SQL, one concern per file, concatenated in file-name order.
SRC        = $(sort $(wildcard src/*.sql))
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
# upgrade/: the script from each release to the next, and the previous
# release's install script as it was released (so an old version can be
# installed, e.g. by the upgrade test).
DATA       = $(wildcard upgrade/$(EXTENSION)--*.sql)

# pg_regress: every sql/*.sql in file-name order (00_install first, 99_uninstall last).
REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=.

EXTRA_CLEAN = $(EXTENSION)--*.zip

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(SRC) $(EXTENSION).control
	cat $(SRC) > $@

version:
	@echo $(EXTVERSION)

dist:
	git archive --format zip --prefix=$(EXTENSION)-$(EXTVERSION)/ -o $(EXTENSION)-$(EXTVERSION).zip HEAD

.PHONY: dist version
