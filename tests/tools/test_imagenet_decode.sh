# ImageNet's layout: a train tar of class tars and a val tar, in one
# pipeline; every image decoded by content (grayscale, CMYK, progressive,
# every subsampling, PNGs named .JPEG) or rejected for the documented reason;
# pixels equal to PIL's / pypng's decode of the same file; labels the same
# from all three validation label forms.
. "$SP_ROOT/tests/tools/lib.sh"
$PY "$FIX/make_ilsvrc.py" fx
decode() { # OUT LABEL-OPTIONS...: sp-decode's status is 1 exactly when it rejected images
    out=$1; shift
    st=0
    sp-unpack fx/ILSVRC2012_img_train.tar fx/ILSVRC2012_img_val.tar |
        sp-decode --classes fx/classes.txt --rejects "$out.rejects" "$@" > "$out.sprs" 2> "$out.err" || st=$?
    [ "$st" -eq "$(if [ -s "$out.rejects" ]; then echo 1; else echo 0; fi)" ] || fail "sp-decode $out: status $st"
}
decode csv --labels fx/LOC_val_solution.csv
$PY "$SP_ROOT/tests/ref/check_images.py" fx csv.sprs csv.rejects > ref.txt || { cat ref.txt; fail "images"; }
cat ref.txt
tail -1 csv.err > got
echo "sp-decode: 88 records in, 64 out, 24 rejected (truncated 12, too-large 4, not-an-image 8), 0 skipped" > want
diff -u want got
grep -q "^sp-decode: ILSVRC2012_img_train.tar/n01440764.tar/n01440764_14.JPEG: rejected (too-large): 20000x20000 is 400.0 megapixels, over the limit of 100.0$" csv.err || fail "reject line"

# the same labels from TensorFlow's form and from the devkit's with its ID table
decode tf --labels fx/val_wnids.txt
decode devkit --labels fx/ground_truth.txt --synset-ids fx/synset_ids.txt
# ... the devkit's ID table read from the devkit archive itself, or from its meta.mat
decode devkit2 --labels fx/ground_truth.txt --synset-ids fx/ILSVRC2012_devkit_t12.tar.gz
decode devkit3 --labels fx/ground_truth.txt --synset-ids fx/meta_plain.mat
sp-cat csv.sprs > a && sp-cat tf.sprs > b && sp-cat devkit.sprs > c
cmp a b || fail "TF labels differ"
cmp a c || fail "devkit labels differ"
sp-cat devkit2.sprs | cmp a - || fail "devkit archive labels differ"
sp-cat devkit3.sprs | cmp a - || fail "meta.mat labels differ"
grep -c '"split":"val"' a | grep -qx 16 || fail "val records"
sp-cat --meta csv.sprs | $PY -c "import json,sys; m=json.load(sys.stdin); print(m['classes'], m['class_descriptions'][1])" > got
echo "['n01440764', 'n01443537', 'n01484850', 'n01491361'] goldfish, Carassius auratus" > want
diff -u want got

# no labels file: validation images are rejected as unlabeled, or kept with --unlabeled
decode nolabels
grep -q "ILSVRC2012_val_00000001.JPEG: rejected (unlabeled): no labels file for validation images (--labels)" nolabels.err || fail "unlabeled reject"
decode keep --unlabeled
sp-cat keep.sprs > keep.txt
[ "$(grep -c '"split":"val".*"label":null' keep.txt)" -eq 16 ] && [ "$(grep -c '"split":"val"' keep.txt)" -eq 16 ] ||
    fail "--unlabeled: want all 16 val records, unlabeled: $(grep '"split":"val"' keep.txt)"
# a devkit file without its ID table is a clear error
expect_stages "0/141 1" 'sp-unpack fx/ILSVRC2012_img_val.tar | sp-decode --classes fx/classes.txt --labels fx/ground_truth.txt'
expect_err_has "fx/ground_truth.txt:1: ILSVRC2012_ID 1000 has no WNID (give the ID table with --synset-ids)"
# --strict: the first reject fails the run and nothing downstream commits
expect_stages "0/141 1 1" 'sp-unpack fx/ILSVRC2012_img_train.tar | sp-decode -q --strict --classes fx/classes.txt | sp-shard -q -o S'
expect_err_has "sp-decode: ILSVRC2012_img_train.tar/n01440764.tar/n01440764_12.JPEG: rejected (truncated): JPEG: Premature end of JPEG file"
[ ! -e S/manifest.json ] || fail "strict run committed"
# the built-in class list: 1000 ImageNet classes by WNID
# (status 1 from sp-decode: the fixture's corrupt images are rejected)
expect_stages "0 1 0" 'sp-unpack fx/ILSVRC2012_img_train.tar | sp-decode -q | sp-cat --meta > meta.json'
$PY -c "
import json,sys; m=json.load(open('meta.json')); print(m['dataset'], len(m['classes']), m['classes'][1], m['class_descriptions'][0])" > got
echo "imagenet 1000 n01443537 tench, Tinca tinca" > want
diff -u want got
expect_stages "0 1 0" 'sp-unpack fx/ILSVRC2012_img_train.tar | sp-decode -q | sp-cat > builtin.txt'
head -1 builtin.txt | grep -q '"label":0,' || fail "built-in label"
# --draft: JPEGs at a DCT scale, both sides still at least the size asked
expect_stages "0 1 0" 'sp-unpack fx/ILSVRC2012_img_train.tar | sp-decode -q --classes fx/classes.txt --draft 20 | sp-cat > draft.txt'
head -1 draft.txt > got
grep -q '"shape":\[24,32,3\]' got || { cat got; fail "draft 1/2 of 64x48"; }
# a rejects file that cannot be written is an I/O error (status 3), even in a
# run whose rejects already make the status 1
expect_stages "0 3" 'sp-unpack fx/ILSVRC2012_img_train.tar | sp-decode -q --classes fx/classes.txt --rejects /dev/full > /dev/null'
expect_err_has "sp-decode: /dev/full: cannot write the rejects: No space left on device"
echo ok
