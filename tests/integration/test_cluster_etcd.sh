# The cluster layer (src/cluster) against a real three-member etcd cluster
# (Debian's etcd-server) on 127.0.0.11-13, ports 2379/2380: key-value, CAS,
# leases and membership, VM ownership, quorum lost and regained. The program
# starts and stops the etcd members itself and prints the TAP lines.
BUILD=${BUILD:-build}
BIN=$BUILD/tests/cluster-etcd-test
if [ ! -x "$BIN" ]; then
    echo "not ok - $BIN is missing (make test-bins)"
    exit 1
fi
if [ ! -x "${TERN_ETCD:-/usr/bin/etcd}" ]; then
    echo "not ok - etcd is missing (scripts/install-deps installs etcd-server)"
    exit 1
fi
exec "$BIN"
