#!/bin/sh
# Install hotfolder as the systemd service contrib/systemd/hotfolder.service describes, making
# every path the unit needs. Run from a checkout, as root:
#
#   sudo contrib/systemd/install.sh [--worker] [--root DIR] [--python PYTHON]
#
#   user and group  hotfolder (system user, home /var/lib/hotfolder, no login shell), through
#                   systemd-sysusers and /etc/sysusers.d/hotfolder.conf
#   /opt/hotfolder/.venv          a venv with this checkout installed (ExecStart's program)
#   /opt/hotfolder/README.md      the unit's Documentation=
#   /etc/hotfolder/hotfolder.toml the config (--config), from contrib/systemd/hotfolder.toml;
#                                 root:hotfolder 0640; an existing one is kept
#   /etc/hotfolder/env            EnvironmentFile= (VENICE_API_KEY=...), root 0600; kept if there
#   /srv/hotfolder/{inbox,outbox} ReadWritePaths=: the watched folder and the outputs, hotfolder's
#   /var/lib/hotfolder            the state dir (--state-dir; StateDirectory= makes it too)
#   /etc/systemd/system/hotfolder.service
#
# --worker makes a fleet worker's machine instead (docs/scale-out.md): the venv gets the
# distributed extra (Dramatiq, Redis), and the unit is hotfolder-worker.service.
# --root DIR does all of it under DIR instead of / (a staging tree or a test); without it the
# service is then started with: systemctl daemon-reload && systemctl enable --now hotfolder
# (hotfolder-worker with --worker).
# Running it again upgrades hotfolder in the venv and keeps the config and the env file.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
root=""
python=${PYTHON:-python3}
unit=hotfolder
extra=""

while [ $# -gt 0 ]; do
    case "$1" in
        --root) root=${2:?--root needs a directory}; shift 2 ;;
        --root=*) root=${1#--root=}; shift ;;
        --python) python=${2:?--python needs a program}; shift 2 ;;
        --worker) unit=hotfolder-worker; extra="[distributed]"; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -n "$root" ]; then
    mkdir -p "$root"
    root=$(cd "$root" && pwd)
fi
if [ "$(id -u)" != 0 ]; then
    echo "install.sh: run it as root (sudo): it creates a system user and folders it owns" >&2
    exit 1
fi
if ! command -v systemd-sysusers >/dev/null; then
    echo "install.sh: systemd-sysusers is missing; install the systemd package" >&2
    exit 1
fi

# The system user and group, from a sysusers.d file (also re-created by systemd at boot).
install -d -m 0755 "$root/etc/sysusers.d"
install -m 0644 "$here/hotfolder.sysusers" "$root/etc/sysusers.d/hotfolder.conf"
if [ -n "$root" ]; then
    systemd-sysusers --root="$root" "$root/etc/sysusers.d/hotfolder.conf"
else
    systemd-sysusers /etc/sysusers.d/hotfolder.conf
fi
uid=$(awk -F: '$1 == "hotfolder" { print $3 }' "$root/etc/passwd")
gid=$(awk -F: '$1 == "hotfolder" { print $3 }' "$root/etc/group")
if [ -z "$uid" ] || [ -z "$gid" ]; then
    echo "install.sh: systemd-sysusers did not create the user hotfolder in $root/etc/passwd" >&2
    exit 1
fi

# The program: a venv under /opt/hotfolder with this checkout installed (not editable).
install -d -m 0755 "$root/opt/hotfolder"
if [ ! -x "$root/opt/hotfolder/.venv/bin/python" ]; then
    "$python" -m venv "$root/opt/hotfolder/.venv"
fi
"$root/opt/hotfolder/.venv/bin/python" -m pip install --quiet --upgrade "$source_dir$extra"
if [ "$source_dir/README.md" != "$root/opt/hotfolder/README.md" ]; then
    install -m 0644 "$source_dir/README.md" "$root/opt/hotfolder/README.md"
fi

# The config and the environment file: readable by the service, never overwritten.
install -d -m 0750 -o 0 -g "$gid" "$root/etc/hotfolder"
if [ ! -e "$root/etc/hotfolder/hotfolder.toml" ]; then
    install -m 0640 -o 0 -g "$gid" "$here/hotfolder.toml" "$root/etc/hotfolder/hotfolder.toml"
fi
if [ ! -e "$root/etc/hotfolder/env" ]; then
    umask 077
    printf '# VENICE_API_KEY=...   (https://venice.ai/settings/api)\n' >"$root/etc/hotfolder/env"
    umask 022
    chmod 0600 "$root/etc/hotfolder/env"
fi

# Where the daemon may write: the folders, and its state dir.
for dir in /srv/hotfolder /srv/hotfolder/inbox /srv/hotfolder/outbox /var/lib/hotfolder; do
    install -d -m 0750 -o "$uid" -g "$gid" "$root$dir"
done

install -d -m 0755 "$root/etc/systemd/system"
install -m 0644 "$here/$unit.service" "$root/etc/systemd/system/$unit.service"

echo "hotfolder installed${root:+ under $root}: $root/opt/hotfolder/.venv/bin/hotfolder"
echo "  config $root/etc/hotfolder/hotfolder.toml, key in $root/etc/hotfolder/env (VENICE_API_KEY=...)"
echo "  drop images into $root/srv/hotfolder/inbox; results in $root/srv/hotfolder/outbox"
if [ -z "$root" ]; then
    echo "start it: systemctl daemon-reload && systemctl enable --now $unit"
fi
