"""ShardIterableDataset: torch's IterableDataset over the C reader, split by rank and DataLoader worker (imports torch)."""
import math
import multiprocessing
import multiprocessing.context

import numpy as np
import torch

from .loader import MAX_BATCH, VIEWS, Reader, _normalizer, check_int, check_range, default_rank_world, epoch_seed

__all__ = ["ShardIterableDataset"]


class ShardIterableDataset(torch.utils.data.IterableDataset):
    """Records (image, label[, key]) of one split for a DataLoader that keeps
    its own batching and transforms.

    Order (docs/elastic-order.md, "ShardIterableDataset"): the epoch's stream
    (the shards in the seed's order) is cut into `partitions` contiguous
    partitions (P, default 64 with shuffle), each read in its own order: windows of
    window_records / P records (window_records: the global shuffle window,
    default 16384 records but at most 32 MiB of them), each permuted by
    (seed, epoch, partition, window). Part p = rank * num_workers + worker of
    world_size * num_workers reads partitions p*P/parts .. (p+1)*P/parts - 1,
    a few records of each in turn (chunk_records at a time in all: how many
    records one call to the C reader gives, which changes no order). So the
    records of each partition, and their order, depend on seed, epoch, P,
    window_records and the set only, not on world_size or num_workers; the
    parts together see every record exactly once per epoch. world_size *
    num_workers must divide P (ValueError otherwise, when the worker starts
    reading). With shuffle=False and no partitions=, as Loader's, P is the
    parts: each part reads its contiguous share in the listed order. image: HWC as stored (numpy; a PIL image with pil=True), or CHW
    float32 normalized with normalize=True; then transform. label: an int,
    then target_transform. set_epoch(e) in the main process chooses the next
    epoch's order, in the workers too: the epoch is a value shared with the
    worker processes the dataset goes to, so persistent_workers=True sees
    each new epoch. Encoded sets come decoded through view ("train":
    RandomResizedCrop(size) + flip; "eval": Resize(size / 0.875) +
    CenterCrop(size); by default "train" for the train split, else "eval"),
    as shardpipe.Loader's (scale, ratio and max_pixels as there)."""

    def __init__(self, directory, split="train", shuffle=True, seed=0, rank=None, world_size=None,
                 transform=None, target_transform=None, normalize=False, pil=False, return_keys=False,
                 chunk_records=64, window_records=0, view=None, size=224, scale=None, ratio=None, max_pixels=0,
                 cache=None, cache_limit=None, partitions=None):
        super().__init__()
        self.chunk_records = check_int("chunk_records", chunk_records, 1, MAX_BATCH)
        self.window_records = check_int("window_records", window_records, 0, (1 << 32) - 1)
        # without shuffle and partitions, one partition a part: its contiguous share in the listed order
        self.partitions = None if partitions is None and not shuffle else \
            64 if partitions is None else check_int("partitions", partitions, 1, 1 << 16)
        self.seed = check_int("seed", seed, 0, (1 << 64) - 1)
        self.size = check_int("size", size, 1, 4096)
        self.max_pixels = check_int("max_pixels", max_pixels, 0, (1 << 64) - 1)
        self.scale, self.ratio = check_range("scale", scale, 0, 1), check_range("ratio", ratio, 0, 1e6)
        self.view = view if view is not None else "train" if split == "train" else "eval"
        if self.view not in VIEWS:
            raise ValueError(f"view 'train' or 'eval', not {self.view!r}")
        self.rank, self.world_size = default_rank_world(rank, world_size)
        self._parts_check(self.world_size, 1)
        self.reader = Reader(directory, split, cache, cache_limit)
        if self.window_records == 0:  # 16384 records, at most 32 MiB of them: never the world's or workers'
            shape = self.reader.view_shape(self.size) if self.reader.encoded else self.reader.shape
            record = math.prod(shape) * (1 if self.reader.encoded else self.reader.dtype.itemsize)
            self.window_records = max(1, min(16384, (32 << 20) // record))
        self.shuffle = shuffle
        self._epoch = multiprocessing.RawValue("q", 0)
        self.transform, self.target_transform = transform, target_transform
        self.normalize, self.pil = normalize, pil
        self._keys = self.reader.keys() if return_keys else None

    def _parts_check(self, world, workers):
        """The partition count for world x workers parts; ValueError unless
        each part can take whole partitions."""
        if self.partitions is None:
            return world * workers
        if self.partitions % (world * workers):
            raise ValueError(f"ShardIterableDataset: world_size {world} x num_workers {workers} = "
                             f"{world * workers} parts: they must divide partitions={self.partitions} (each part "
                             "reads whole partitions; give partitions= a multiple of the parts)")
        return self.partitions

    @property
    def epoch(self):
        return self._epoch.value if not isinstance(self._epoch, int) else self._epoch

    def set_epoch(self, epoch):
        epoch = check_int("epoch", epoch, 0, (1 << 63) - 1)
        if isinstance(self._epoch, int):
            self._epoch = epoch
        else:
            self._epoch.value = epoch

    def __getstate__(self):
        """The shared epoch goes to the worker processes a DataLoader starts
        (they see every later set_epoch); any other pickle takes its value."""
        state = dict(self.__dict__)
        if multiprocessing.context.get_spawning_popen() is None and not isinstance(self._epoch, int):
            state["_epoch"] = self._epoch.value
        return state

    def __len__(self):
        """This rank's records in an epoch (all its workers together): its partitions'."""
        partitions = self._parts_check(self.world_size, 1)
        lanes = partitions // self.world_size
        return sum(self.reader.part_records(q, partitions)
                   for q in range(self.rank * lanes, (self.rank + 1) * lanes))

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        partitions = self._parts_check(self.world_size, workers)
        parts = self.world_size * workers
        lanes = partitions // parts
        # each partition's window of w records, read b at a time: b divides w,
        # so the reader's window is w whatever b (shards/order.h), and b only
        # sets how many records a call gives
        w = max(1, self.window_records // partitions)
        b = math.gcd(w, max(1, self.chunk_records // lanes))
        norm = _normalizer(self.reader) if self.normalize else None
        if self.pil:
            from PIL import Image
        for px, labels, _, idx in self.reader.iterate(b * lanes, epoch_seed(self.seed, self.epoch),
                                                   self.shuffle, 0, self.rank * workers + worker, parts, 0,
                                                   w * partitions, view=self.view, size=self.size,
                                                   scale=self.scale, ratio=self.ratio, max_pixels=self.max_pixels,
                                                   partitions=partitions,
                                                   next_seed=epoch_seed(self.seed, self.epoch + 1)):
            images = norm(px) if norm else px
            for i in range(len(labels)):
                image, label = images[i], int(labels[i])
                if self.pil:
                    image = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
                if self.transform is not None:
                    image = self.transform(image)
                if self.target_transform is not None:
                    label = self.target_transform(label)
                yield (image, label) if self._keys is None else (image, label, self._keys[int(idx[i])])
