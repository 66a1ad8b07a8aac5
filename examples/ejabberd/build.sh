#!/bin/sh
# Compile the ejabberd shim (auth backend + its options module, the sources of the
# ejabberd-contrib package in mod_auth_external_component/src) against the installed
# ejabberd's headers: for packagers. Users install the package with
# `ejabberdctl module_install` instead (docs/ejabberd.md).
#
#   examples/ejabberd/build.sh [OUTPUT_DIR]     (default: examples/ejabberd/ebin)
#
# Needs erlc (Debian: erlang-base, pulled in by the ejabberd package) and the
# headers Debian's ejabberd package installs: its own include/ (logger.hrl) and
# p1_xmpp's (xmpp.hrl, from erlang-p1-xmpp). Override the lookup with
# EJABBERD_LIB_DIR=/path/to/ejabberd-VERSION (the directory holding ebin/ and
# include/) for other layouts; when that ejabberd's own Erlang libraries
# (p1_xmpp, ...) are not in Erlang's lib directory, add their parent to ERL_LIBS.
# ERLC_FLAGS adds erlc options (the tests use +warnings_as_errors).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/ebin"}

die() { echo "build.sh: $*" >&2; exit 1; }

command -v erlc >/dev/null 2>&1 || die "erlc not found (install erlang-base, or ejabberd which depends on it)"
command -v erl >/dev/null 2>&1 || die "erl not found (install erlang-base)"

# Debian: /usr/lib/<multiarch>/ejabberd-<version> (ejabberd-23.01-1, ejabberd-24.12, ...),
# the newest if there are several; other layouts: set EJABBERD_LIB_DIR.
if [ -z "${EJABBERD_LIB_DIR:-}" ]; then
    EJABBERD_LIB_DIR=$(
        for d in /usr/lib/*/ejabberd-* /usr/lib/ejabberd-* /usr/local/lib/ejabberd-* \
                 /opt/ejabberd-*/lib/ejabberd-*; do
            [ -f "$d/ebin/ejabberd_auth.beam" ] && echo "$d"
        done | sort -V | tail -n 1
    )
fi
[ -n "$EJABBERD_LIB_DIR" ] && [ -f "$EJABBERD_LIB_DIR/ebin/ejabberd_auth.beam" ] ||
    die "ejabberd not found (install the ejabberd package, or set EJABBERD_LIB_DIR)"
[ -f "$EJABBERD_LIB_DIR/include/logger.hrl" ] ||
    die "$EJABBERD_LIB_DIR/include/logger.hrl missing (ejabberd headers not installed)"

# p1_xmpp's include dir, wherever the xmpp application lives.
xmpp_include=$(erl -noshell -pa "$EJABBERD_LIB_DIR/ebin" -eval '
    case code:which(xmpp) of
        non_existing -> halt(1);
        Beam -> io:format("~ts~n", [filename:join(filename:dirname(filename:dirname(Beam)), "include")]), halt(0)
    end.') || die "the xmpp (p1_xmpp) library was not found in the Erlang code path"
[ -f "$xmpp_include/xmpp.hrl" ] || die "$xmpp_include/xmpp.hrl missing"

mkdir -p "$out"
erlc -o "$out" ${ERLC_FLAGS:-} \
    -I "$EJABBERD_LIB_DIR/include" -I "$xmpp_include" \
    -pa "$EJABBERD_LIB_DIR/ebin" \
    "$here/mod_auth_external_component/src/mod_auth_external_component.erl" \
    "$here/mod_auth_external_component/src/ejabberd_auth_external_component.erl"

echo "built $out/ejabberd_auth_external_component.beam and $out/mod_auth_external_component.beam (against $EJABBERD_LIB_DIR)"
