#!/usr/bin/env bash
# Make sure what the local platform needs is here: Python >= 3.11, the .venv with the project
# installed, and the Debian packages of the local servers (installed only as root or with
# password-less sudo). Sourced by local/demo.sh and local/test.sh; idempotent, and quiet when
# everything is already there.

SMARTGRID_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

_sg_say() { echo "bootstrap: $*" >&2; }
_sg_die() { _sg_say "$*"; exit 1; }

_sg_sudo() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

_sg_can_apt() {
    command -v apt-get >/dev/null || return 1
    [ "$(id -u)" -eq 0 ] || { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }
}

_sg_apt_updated=""
_sg_apt_install() {
    local log
    log="$(mktemp)"
    _sg_say "installing $*"
    if { [ -n "$_sg_apt_updated" ] || _sg_sudo apt-get update -qq; } >"$log" 2>&1 \
        && _sg_apt_updated=1 \
        && _sg_sudo env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "$@" >>"$log" 2>&1; then
        rm -f "$log"
    else
        cat "$log" >&2
        _sg_say "apt-get could not install $*; output above and in $log"
        return 1
    fi
}

_sg_find_python() {
    local candidate
    for candidate in python3 python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

_sg_postgres_present() {
    [ -n "${SMARTGRID_PG_DSN:-}" ] \
        || timeout 2 bash -c ': >/dev/tcp/127.0.0.1/5432' 2>/dev/null \
        || command -v initdb >/dev/null \
        || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

_sg_system_packages() {
    local missing=()
    _sg_postgres_present || missing+=(postgresql)
    command -v memcached >/dev/null || missing+=(memcached)
    [ -n "${SMARTGRID_REDIS_URL:-}" ] || command -v redis-server >/dev/null || missing+=(redis-server)
    [ "${#missing[@]}" -eq 0 ] && return 0
    if ! _sg_can_apt; then
        _sg_say "missing ${missing[*]}; install them (not root and no password-less sudo here)"
    elif ! _sg_apt_install "${missing[@]}"; then
        # Without PostgreSQL nothing runs; without Redis no alerting and without memcached no analytics
        # (unless SMARTGRID_REDIS_URL / SMARTGRID_MEMCACHED_URL name one).
        _sg_postgres_present || _sg_die "expected PostgreSQL (server or initdb), found none"
        [ -n "${SMARTGRID_REDIS_URL:-}" ] || command -v redis-server >/dev/null \
            || _sg_die "expected redis-server (apt-get install redis-server) or SMARTGRID_REDIS_URL, found neither"
        [ -n "${SMARTGRID_MEMCACHED_URL:-}" ] || command -v memcached >/dev/null \
            || _sg_die "expected memcached (apt-get install memcached) or SMARTGRID_MEMCACHED_URL, found neither"
        _sg_say "continuing without ${missing[*]}"
    fi
}

_sg_venv() {
    local python venv="$SMARTGRID_ROOT/.venv"
    local stamp="$venv/.smartgrid-installed" log="$venv/pip-install.log"
    if [ ! -x "$venv/bin/python" ]; then
        if ! python="$(_sg_find_python)"; then
            _sg_can_apt || _sg_die "expected python3 >= 3.11, found none; install it"
            _sg_apt_install python3 python3-venv || _sg_die "could not install python3"
            python="$(_sg_find_python)" || _sg_die "expected python3 >= 3.11 after installing it, found none"
        fi
        _sg_say "creating .venv with $python"
        "$python" -m venv "$venv" || _sg_die "$python could not create .venv (on Debian: apt-get install python3-venv)"
    fi
    if [ ! -e "$stamp" ] || [ "$SMARTGRID_ROOT/pyproject.toml" -nt "$stamp" ]; then
        _sg_say "installing the project into .venv"
        if ! (cd "$SMARTGRID_ROOT" && "$venv/bin/pip" install --disable-pip-version-check -q -e '.[test]') >"$log" 2>&1; then
            cat "$log" >&2
            _sg_die "pip install failed; output above and in $log"
        fi
        touch "$stamp"
    fi
}

_sg_system_packages
_sg_venv
