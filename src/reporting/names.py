"""Display names: the config names of datasets, models, pipelines, tasks and methods as the papers
print them (PC++ and ConQ tables and text). One place; a table's spec may override a method's
label for that table (``layout.labels``, e.g. ConQ Table 2's "ProxQuant [2]"). A name without an
entry (a method added as one YAML file) is shown as it is.
"""

from __future__ import annotations

DATASETS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet": "ImageNet-1K", "digits": "digits"}

MODELS = {
    "resnet20": "ResNet20", "resnet32": "ResNet32", "resnet44": "ResNet44", "resnet56": "ResNet56",
    "resnet18": "ResNet18", "resnet50": "ResNet-50", "vgg_small": "VGG-Small", "vit_b16": "ViT-B",
    "deit_t": "DeiT-T", "deit_s": "DeiT-S", "deit_b": "DeiT-B", "swin_t": "Swin-T", "nest_t": "NesT-T",
    "vit_tiny": "ViT-tiny",
}

PIPELINES = {"ft": "FT", "e2e": "E2E"}
TASKS = {"bw": "BW", "bwa": "BWA", "bwaa": "BWAA"}

METHODS = {
    "fp": "FP", "pq": "PQ", "proxquant": "ProxQuant", "rpc": "rPC", "bc": "BC", "pc": "PC", "bnn": "BNN",
    "bnnp": "BNN+", "bnnpp": "BNN++", "bireal": "Bi-Real", "bireal_appf": "Bi-Real", "rbnn": "R-BNN",
    "polyp": "Poly+", "ede": "EDE", "edep": "EDE+", "react": "ReAct", "react_appf": "ReAct", "conq": "ConQ",
    "proxgen": "ProxGen", "ptb": "PTB",
    # numbers the papers quote from other work (src.reporting.paper.LITERATURE_METHODS)
    "bivit": "BiViT", "dorefa": "DoReFa", "lqnets": "LQ-Nets", "irnet": "IR-Net", "dsq": "DSQ",
    "binaryconnect_paper": "BinaryConnect", "lab": "LAB", "bwn": "BWN", "bayesbinn": "BayesBiNN",
    "md_softmax": "MD-softmax", "md_softmax_s": "MD-softmax-s", "md_tanh_s": "MD-tanh-s", "pmf": "PMF",
}

# PC++ Table 5's protocol columns (§4.3)
PROTOCOLS = {"scaling": "Scaling", "normalization": "Normalization", "pretrain": "Pre-train", "kd": "KD"}

KEY_TITLES = {"dataset": "Dataset", "model": "Model", "pipeline": "Pipeline", "task": "Task", "variant": "Variant",
              "method": "Method"}

_BY_KEY = {"dataset": DATASETS, "model": MODELS, "pipeline": PIPELINES, "task": TASKS, "method": METHODS}


def display(key: str, name: str, labels: dict[str, str] | None = None) -> str:
    """How a table prints ``name`` of row/column key ``key`` (dataset, model, pipeline, task,
    method, variant); ``labels`` (a table's own labels) win."""
    if labels and name in labels:
        return labels[name]
    return _BY_KEY.get(key, {}).get(name, name)


def weight_activation_bits(method: str, task: str) -> str:
    """ConQ Table 2's W/A column: bits of weights / activations ("32/32" full precision, "1/32" BW,
    "1/1" BWA and BWAA)."""
    if method == "fp":
        return "32/32"
    return "1/1" if task in ("bwa", "bwaa") else "1/32"
