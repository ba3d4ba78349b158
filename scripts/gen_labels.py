"""Writes src/labels/imagenet1k.tsv (synset<TAB>label, one line per class index)
from the ImageNet-1k tables that ship in the timm package, so labels match
timm's `ImageNetInfo.index_to_description` exactly."""
import csv
import pathlib
import pkgutil

import timm.data

def table(name):
    data = pkgutil.get_data(timm.data.__name__, f"_info/{name}").decode("utf-8")
    return data.splitlines()

synsets = [line.strip() for line in table("imagenet_synsets.txt") if line.strip()]
lemmas = dict(csv.reader(table("imagenet_synset_to_lemma.txt"), delimiter="\t"))
assert len(synsets) == 1000, len(synsets)
out = pathlib.Path(__file__).resolve().parent.parent / "src" / "labels" / "imagenet1k.tsv"
out.write_text("".join(f"{s}\t{lemmas[s]}\n" for s in synsets), encoding="utf-8")
print(f"wrote {out}")
