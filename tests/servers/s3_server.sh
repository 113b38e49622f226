#!/bin/bash
# s3_server.sh DIR PORT ACCESS_KEY SECRET_KEY: starts Ceph's S3 server on
# 127.0.0.1:PORT from nothing, everything under DIR (no cephx, one monitor,
# one OSD on the in-memory object store, pools of one replica, radosgw with
# its beast frontend), creates a user with the keys given, and returns once
# radosgw answers. The daemons' pids are in DIR/*.pid (stop them with
# `kill $(cat DIR/*.pid)`); their logs in DIR/*.log. Exit 0, or 1 with the
# step that failed and its log on stderr.
set -eu -o pipefail
dir=$(cd "$1" && pwd) port=$2 key=$3 secret=$4
for t in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool; do
    command -v $t >/dev/null || { echo "s3_server.sh: $t is missing (ceph-mon ceph-osd radosgw)" >&2; exit 1; }
done
fsid=$(cat /proc/sys/kernel/random/uuid)
mkdir -p "$dir/mon" "$dir/osd" "$dir/run"
cat > "$dir/ceph.conf" <<X
[global]
fsid = $fsid
mon host = 127.0.0.1:$((port + 1))
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms client mode = crc
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/\$name.pid
log file = $dir/\$name.log
keyring = $dir/keyring
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
ms bind ipv6 = false
[mon]
mon data = $dir/mon
[osd]
osd data = $dir/osd
osd objectstore = memstore
memstore device bytes = 1073741824
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$port
rgw dns name = 127.0.0.1
# parts of 64 KiB (S3 and radosgw default to 5 MiB but the last): the tests
# put small shards in parts
rgw multipart min part size = 65536
X
C=(-c "$dir/ceph.conf")
step() { # WHAT LOG COMMAND...: runs it, or names it and shows its log
    what=$1 log=$2; shift 2
    "$@" > "$dir/$what.out" 2>&1 || { echo "s3_server.sh: $what failed:" >&2; tail -20 "$dir/$what.out" "$log" >&2 2>/dev/null; exit 1; }
}
step keyring "$dir/keyring.out" ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *'
step monmap "$dir/monmap.out" monmaptool --create --add a 127.0.0.1:$((port + 1)) --fsid "$fsid" "$dir/monmap"
step mkfs-mon "$dir/mon.a.log" ceph-mon "${C[@]}" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring"
step mon "$dir/mon.a.log" ceph-mon "${C[@]}" -i a
step osd-create "$dir/mon.a.log" ceph "${C[@]}" osd create
step mkfs-osd "$dir/osd.0.log" ceph-osd "${C[@]}" -i 0 --mkfs
step osd "$dir/osd.0.log" ceph-osd "${C[@]}" -i 0
step crush "$dir/mon.a.log" ceph "${C[@]}" osd crush add osd.0 1.0 host=localhost root=default
step rgw "$dir/client.rgw.log" radosgw "${C[@]}" -n client.rgw
for i in $(seq 600); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    [ "$i" -lt 600 ] || { echo "s3_server.sh: radosgw did not answer in 60 s" >&2; tail -20 "$dir/client.rgw.log" >&2; exit 1; }
    sleep 0.1
done
step user "$dir/client.rgw.log" radosgw-admin "${C[@]}" user create --uid=test --display-name=test \
    --access-key="$key" --secret-key="$secret"
