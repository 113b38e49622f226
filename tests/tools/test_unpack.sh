# sp-unpack: unsafe entries skipped and reported; nested tars and compressed
# members streamed; tar.gz, zip, bare .gz, plain and empty files; stdin; a
# record stream (plain or zstd) as input.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_archives.py" a
mkdir work && cd work

keys() { sp-cat "$@" | $PY -c "import json,sys; [print(json.loads(l)['key'], json.loads(l)['size']) for l in sys.stdin]"; }

# unsafe entries: skipped, reported one per line, exit 1, the stream complete
expect_status 1 sp-unpack ../a/unsafe.tar
mv out unsafe.sprs
cat > want <<'X'
sp-unpack: unsafe.tar: ../evil.txt: path with '..'
sp-unpack: unsafe.tar: /etc/evil: absolute path
sp-unpack: unsafe.tar: data/../../up.txt: path with '..'
sp-unpack: unsafe.tar: data/link: symbolic link, not followed
sp-unpack: unsafe.tar: data/hard: hard link, not followed
sp-unpack: unsafe.tar: dev/null: device file
sp-unpack: unsafe.tar: dev/fifo: fifo
sp-unpack: 7 entries skipped
X
diff -u want err || fail "unsafe entries"
keys unsafe.sprs > got
printf 'unsafe.tar/data/a.bin 1000\nunsafe.tar/data/b.txt 6\n' > want
diff -u want got
[ "$(ls -A)" = "$(printf 'err\ngot\nunsafe.sprs\nwant')" ] || fail "files appeared: $(ls -A)"
[ ! -e ../evil.txt ] && [ ! -e /etc/evil ] && [ ! -e ../../up.txt ] || fail "an entry escaped"

# nested tar and gzip member, streamed; the same keys from the .tar.gz
sp-unpack ../a/outer.tar > outer.sprs
keys outer.sprs > got
cat > want <<'X'
outer.tar/d.bin 3000
outer.tar/inner.tar/x/y.bin 10240
outer.tar/inner.tar/x/z.txt 4
outer.tar/c 18
X
diff -u want got
sp-unpack ../a/outer.tar.gz | keys | sed 's|^outer.tar.gz/|outer.tar/|' > got
diff -u want got
# --no-recurse keeps the nested tar and the gzip member as they are
sp-unpack --no-recurse ../a/outer.tar | keys > got
printf 'outer.tar/d.bin 3000\nouter.tar/inner.tar 20480\nouter.tar/c.gz 38\n' > want
diff -u want got

# stdin, with and without --name
cat ../a/outer.tar | sp-unpack | keys | sed -n 1p > got
echo "stdin/d.bin 3000" > want && diff -u want got
cat ../a/outer.tar | sp-unpack --name outer.tar | keys | sed -n 1p > got
echo "outer.tar/d.bin 3000" > want && diff -u want got

# zip, bare .gz (suffix dropped), an empty file
sp-unpack ../a/files.zip ../a/note.txt.gz ../a/empty.bin | keys > got
printf 'files.zip/z/one.txt 400\nfiles.zip/two.bin 1000\nnote.txt 17\nempty.bin 0\n' > want
diff -u want got

# a record stream as input: its blobs are unpacked, keys extended; zstd too
sp-unpack --no-recurse ../a/outer.tar > shallow.sprs
sp-unpack shallow.sprs | keys > got
keys outer.sprs > want
diff -u want got
zstd -q -c shallow.sprs > shallow.sprs.zst
sp-unpack shallow.sprs.zst | sp-cat > got
sp-cat outer.sprs > want
diff -u want got || fail "zstd stream input"
# ... and the recipe records both runs
sp-unpack shallow.sprs | sp-cat --meta | $PY -c "import json,sys; print([s['tool'] for s in json.load(sys.stdin)['recipe']])" > got
echo "['sp-unpack', 'sp-unpack']" > want && diff -u want got

# the exact sp-cat line of a record; the checksum from python3-xxhash
sp-cat outer.sprs > all && head -1 all > got
ck=$($PY -c "import xxhash; print(xxhash.xxh3_64_hexdigest(b'D' * 3000))")
echo '{"key":"outer.tar/d.bin","split":"none","label":null,"kind":"blob","size":3000,"checksum":"'$ck'"}' > want
diff -u want got

# a big inner tar is streamed: sp-unpack's memory stays far below its size
$PY - <<'X'
import io, os, tarfile
inner = io.BytesIO()
with tarfile.open(fileobj=inner, mode="w") as t:
    for i in range(3):
        data = os.urandom(1 << 20) * 32          # 32 MiB a member, 96 MiB in all
        info = tarfile.TarInfo(f"n00000001_{i}.JPEG"); info.size = len(data)
        t.addfile(info, io.BytesIO(data))
with tarfile.open("big_train.tar", "w") as t:
    info = tarfile.TarInfo("n00000001.tar"); info.size = len(inner.getvalue())
    t.addfile(info, io.BytesIO(inner.getvalue()))
X
$PY - <<'X' > rss.txt
import resource, subprocess
subprocess.run(["bash", "-o", "pipefail", "-c", "sp-unpack big_train.tar | sp-cat > keys.txt"], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
X
[ "$(wc -l < keys.txt)" -eq 3 ] || fail "big tar: $(cat keys.txt)"
[ "$(cat rss.txt)" -lt 40 ] || fail "sp-unpack held $(cat rss.txt) MiB for a 96 MiB inner tar"
rm big_train.tar

# a corrupt archive is an error naming it
head -c 5000 ../a/outer.tar > cut.tar
expect_status 1 sp-unpack cut.tar
expect_err_has "sp-unpack: cut.tar/inner.tar"
echo ok
