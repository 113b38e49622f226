# sp-train --schedule multistep: the rate is multiplied by --gamma at each of
# --milestones (epochs) or --milestones-steps (optimizer steps), exactly where
# PyTorch's MultiStepLR changes it; with a warm-up first; a run resumed inside
# the schedule follows the uninterrupted one's rates and ends on its weights;
# the options' misuses are usage errors.
. "$SP_ROOT/tests/tools/lib.sh"
[ -d "$FMNIST" ] || fail "dataset-fashion-mnist is not installed"
sp-unpack -q "$FMNIST"/*.gz | sp-decode -q | sp-shard -q -o S
# one step an epoch: each epoch's reported rate is its step's
set -- --steps-per-epoch 1 --eval-steps 1 -b 32 --optimizer sgd --lr 0.1 --seed 2 -q --schedule multistep
sp-train S "$@" --milestones-steps 3,5 -e 7 --json steps.json -o full.ckpt
sp-train S "$@" --milestones-steps 3,5 -e 4 -o part.ckpt
sp-train S -e 7 --resume part.ckpt -o part.ckpt --json resumed.json -q
# two steps an epoch, milestones in epochs, after a warm-up of one epoch
set -- --steps-per-epoch 2 --eval-steps 1 -b 32 --optimizer sgd --lr 0.1 --seed 2 -q --schedule multistep
sp-train S "$@" --milestones 2,4 --gamma 0.5 --warmup 1 -e 6 --json epochs.json
$PY - <<'X'
import json, struct
import torch
def lrs(path):
    return [e["lr"] for e in json.load(open(path))["per_epoch"]]
def torch_lrs(steps, milestones, gamma, per_epoch=1):
    """the rate of each step's update under MultiStepLR, stepped per epoch (per_epoch steps) or per step"""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    s = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma)
    out = []
    for i in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if (i + 1) % per_epoch == 0:
            s.step()
    return out
def close(a, b):
    return len(a) == len(b) and all(abs(x - y) <= 1e-6 * y for x, y in zip(a, b))
got, want = lrs("steps.json"), torch_lrs(7, [3, 5], 0.1)
assert close(got, want), (got, want)
assert close(lrs("resumed.json"), want), lrs("resumed.json")
# epochs 2 and 4 (0-based) start at the lower rates; epoch 0 is the warm-up
got = lrs("epochs.json")
want = torch_lrs(12, [2, 4], 0.5, per_epoch=2)[1::2]
assert close(got, want), (got, want)
r = json.load(open("steps.json"))["recipe"]
assert r["schedule"] == "multistep" and r["milestones"] == [3, 5] and r["milestones_unit"] == "steps", r
def state(p):
    d = open(p, "rb").read(); (h,) = struct.unpack_from("<I", d, 12); return d[16 + h:-8]
assert state("full.ckpt") == state("part.ckpt"), "the resumed run's weights differ from the uninterrupted run's"
print("ok")
X
# a resumed run may move the milestones: said, and taken from its next epoch
sp-train S -e 9 --resume full.ckpt --milestones-steps 3,8 -o m.ckpt --json m.json 2> err \
    || { cat err; fail "resume with other milestones"; }
grep -q "^sp-train: --milestones 3,8 steps from epoch 8 on, in place of the checkpoint's 3,5 steps$" err \
    || { cat err; fail "the changed milestones are not said"; }
$PY -c "
import json
l = [e['lr'] for e in json.load(open('m.json'))['per_epoch']][7:]
assert abs(l[0] - 0.01) < 1e-9 and abs(l[1] - 0.001) < 1e-10, l"
# misuse
expect_status 2 sp-train S --schedule multistep -e 1
expect_err "sp-train: --schedule multistep: give where the rate drops (--milestones EPOCHS or --milestones-steps STEPS)"
expect_status 2 sp-train S --milestones 2 -e 1
expect_err "sp-train: --milestones: only with --schedule multistep (this run's schedule is constant)"
expect_status 2 sp-train S --schedule multistep --milestones 2 --milestones-steps 5 -e 1
expect_err_has "sp-train: --milestones-steps: not with --milestones"
expect_status 2 sp-train S --schedule multistep --milestones 3,2 -e 1
expect_err_has "not increasing: 3,2"
expect_status 2 sp-train S --schedule multistep --milestones 2,x -e 1
expect_err_has "not a list of whole numbers"
echo ok
