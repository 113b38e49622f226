"""ShardIterableDataset: torch's IterableDataset over the C reader, split by rank and DataLoader worker (imports torch)."""
import numpy as np
import torch

from .loader import Reader, _normalizer, default_rank_world, epoch_seed

__all__ = ["ShardIterableDataset"]


class ShardIterableDataset(torch.utils.data.IterableDataset):
    """Records (image, label[, key]) of one split for a DataLoader that keeps
    its own batching and transforms.

    Part p = rank * num_workers + worker of rank * workers parts: the same
    seeded shard-order stream as Loader, cut in contiguous shares, so the
    workers of all ranks see every record exactly once per epoch; each worker
    reads its share with the C reader (chunk_records at a time, a shuffle
    window of window_records). image: HWC as stored (numpy; a PIL image with
    pil=True), or CHW float32 normalized with normalize=True; then transform.
    label: an int, then target_transform. set_epoch(e) in the main process
    chooses the next epoch's order (workers get a copy of the dataset at
    each DataLoader iteration). Encoded sets come decoded through view
    ("train": RandomResizedCrop(size) + flip; "eval": Resize(size / 0.875) +
    CenterCrop(size); by default "train" for the train split, else "eval"),
    as shardpipe.Loader's."""

    def __init__(self, directory, split="train", shuffle=True, seed=0, rank=None, world_size=None,
                 transform=None, target_transform=None, normalize=False, pil=False, return_keys=False,
                 chunk_records=64, window_records=0, view=None, size=224):
        super().__init__()
        self.reader = Reader(directory, split)
        self.view = view if view is not None else "train" if split == "train" else "eval"
        self.size = int(size)
        self.rank, self.world_size = default_rank_world(rank, world_size)
        self.shuffle, self.seed, self.epoch = shuffle, int(seed), 0
        self.transform, self.target_transform = transform, target_transform
        self.normalize, self.pil = normalize, pil
        self.chunk_records, self.window_records = int(chunk_records), window_records
        self._keys = self.reader.keys() if return_keys else None

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __len__(self):
        """This rank's records in an epoch (all its workers together)."""
        return self.reader.part_records(self.rank, self.world_size)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        norm = _normalizer(self.reader) if self.normalize else None
        if self.pil:
            from PIL import Image
        for px, labels, _, idx in self.reader.iterate(self.chunk_records, epoch_seed(self.seed, self.epoch),
                                                   self.shuffle, 0, self.rank * workers + worker,
                                                   self.world_size * workers, 0, self.window_records,
                                                   view=self.view, size=self.size):
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
