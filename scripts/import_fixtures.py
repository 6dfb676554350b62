#!/usr/bin/env python3
"""Make the fixtures of `convscope import` with the real Keras and PyTorch, and check what
`convscope export-weights` writes by loading it back in both.

Needs a throwaway virtual environment (nothing here is needed to build or test convscope):

    python3 -m venv /tmp/venv-import
    /tmp/venv-import/bin/pip install tensorflow-cpu tf-keras torch safetensors h5py pillow

Commands:

    # the committed fixtures, tests/fixtures/import/ (small networks, 32x32 inputs, < 100 KB each)
    python scripts/import_fixtures.py fixtures [--out tests/fixtures/import]

    # the tutorial network at 150x150 (10.6 M parameters, ~42 MB: not committed), for timing
    # `convscope import` and for the ignored test `import_full_size_keras_model`
    python scripts/import_fixtures.py full --out /tmp/convscope-full

    # load files made by `convscope export-weights` in PyTorch and in Keras and compare their
    # probabilities with `convscope predict RUN IMAGES... --json` (saved to PREDICT_JSON)
    python scripts/import_fixtures.py check-export --safetensors M.safetensors \
        --keras M.keras --predict PREDICT_JSON

Every model's probabilities on the fixture images are recorded in `expected.json` as
convscope reports them: for one sigmoid output p, [1 - p, p]; for a softmax, the softmax.
Inputs are PNG images of exactly the model's input size, read as RGB and divided by 255
(the tutorial's `rescale=1/255`), as convscope reads them.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

SIZE = 32
SEED = 15


def images(out, size, count=3):
    """Random RGB PNGs of size x size (seeded), written to `out`; returns their names."""
    rng = np.random.default_rng(SEED)
    names = []
    for i in range(count):
        pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        # Some smooth structure too, so that the maps are not only noise.
        yy, xx = np.mgrid[0:size, 0:size]
        pixels[..., i % 3] = ((np.sin(xx / (3 + i)) + np.cos(yy / (4 + i))) * 63 + 128).astype(np.uint8)
        name = f"image{i}.png"
        Image.fromarray(pixels, "RGB").save(os.path.join(out, name))
        names.append(name)
    return names


def load_inputs(out, names):
    """[n, h, w, 3] float32 in [0, 1]."""
    return np.stack(
        [np.asarray(Image.open(os.path.join(out, n)).convert("RGB"), dtype=np.float32) / 255.0 for n in names]
    )


def as_convscope(probs):
    """convscope's probability rows from a model's outputs."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape[1] == 1:
        return np.concatenate([1.0 - probs, probs], axis=1).tolist()
    return probs.tolist()


def randomize_keras(model, rng):
    """Weights with spread-out values, so that wrong layouts give clearly wrong outputs."""
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([rng.normal(0.0, 0.35, w.shape).astype(np.float32) for w in ws])


def keras_small(keras, filters, dense, outputs, activation):
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            L.Conv2D(filters[0], 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Dropout(0.2),
            L.Conv2D(filters[1], 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(filters[2], 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Dropout(0.2),
            L.Flatten(),
            L.Dense(dense, activation="relu"),
            L.Dense(outputs, activation=activation),
        ]
    )


def torch_small(torch, filters, dense, outputs):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, filters[0], 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.2),
        nn.Conv2d(filters[0], filters[1], 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(filters[1], filters[2], 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.2),
        nn.Flatten(),
        nn.Linear(filters[2] * (SIZE // 8) ** 2, dense),
        nn.ReLU(),
        nn.Linear(dense, outputs),
    )


FILTERS = (4, 8, 8)
DENSE = 16


def fixtures(out):
    os.makedirs(out, exist_ok=True)
    names = images(out, SIZE)
    x = load_inputs(out, names)
    expected = {"images": names, "models": {}}
    rng = np.random.default_rng(SEED)

    import keras

    # Keras 3: binary (sigmoid) as .keras and .weights.h5; three classes (softmax) as .keras.
    m = keras_small(keras, FILTERS, DENSE, 1, "sigmoid")
    randomize_keras(m, rng)
    m.save(os.path.join(out, "keras3_binary.keras"))
    m.save_weights(os.path.join(out, "keras3_binary.weights.h5"))
    p = as_convscope(m.predict(x, verbose=0))
    expected["models"]["keras3_binary.keras"] = {"probabilities": p}
    expected["models"]["keras3_binary.weights.h5"] = {"probabilities": p, "config": "small.toml"}

    m = keras_small(keras, FILTERS, DENSE, 3, "softmax")
    randomize_keras(m, rng)
    m.save(os.path.join(out, "keras3_three.keras"))
    expected["models"]["keras3_three.keras"] = {"probabilities": as_convscope(m.predict(x, verbose=0))}

    # Another architecture: a functional model with batch normalisation (refused, named).
    inputs = keras.Input((SIZE, SIZE, 3))
    y = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.Flatten()(keras.layers.MaxPooling2D(2)(y))
    keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(y)).save(
        os.path.join(out, "keras3_functional_bn.keras")
    )

    # Keras 2 (tf-keras), legacy full-model .h5, two classes as a 2-unit softmax.
    import tf_keras

    m = keras_small(tf_keras, FILTERS, DENSE, 2, "softmax")
    randomize_keras(m, rng)
    m.save(os.path.join(out, "keras2_softmax2.h5"))
    expected["models"]["keras2_softmax2.h5"] = {"probabilities": as_convscope(m.predict(x, verbose=0))}

    # PyTorch: a state dict (.pt), a checkpoint dict (.pth) and safetensors.
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(SEED)
    tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()

    def randomize_torch(model):
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.from_numpy(rng.normal(0.0, 0.35, tuple(p.shape)).astype(np.float32)))
        return model.eval()

    t = randomize_torch(torch_small(torch, FILTERS, DENSE, 1))
    with torch.no_grad():
        p = as_convscope(torch.sigmoid(t(tx)).numpy())
    torch.save(t.state_dict(), os.path.join(out, "torch_binary.pt"))
    expected["models"]["torch_binary.pt"] = {"probabilities": p, "config": "small.toml"}
    torch.save(
        {"epoch": 7, "state_dict": t.state_dict(), "classes": ["cat", "dog"]},
        os.path.join(out, "torch_checkpoint.pth"),
    )
    expected["models"]["torch_checkpoint.pth"] = {
        "probabilities": p,
        "config": "small.toml",
        "classes": ["cat", "dog"],
    }

    t = randomize_torch(torch_small(torch, FILTERS, DENSE, 3))
    with torch.no_grad():
        p = as_convscope(torch.softmax(t(tx), dim=1).numpy())
    save_file({k: v.contiguous() for k, v in t.state_dict().items()}, os.path.join(out, "torch_three.safetensors"))
    expected["models"]["torch_three.safetensors"] = {"probabilities": p, "config": "small.toml"}

    # Another architecture: a bit of a ResNet (conv without bias, then batch norm).
    r = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1, bias=False), torch.nn.BatchNorm2d(16))
    torch.save(r.state_dict(), os.path.join(out, "resnet_like.pt"))

    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    for name in sorted(os.listdir(out)):
        print(f"{os.path.getsize(os.path.join(out, name)):>8}  {name}")


def full(out):
    """The tutorial network (150x150, 16-32-64 filters, Dense 512), Keras 3 .keras."""
    os.makedirs(out, exist_ok=True)
    import keras

    L = keras.layers
    m = keras.Sequential(
        [
            keras.Input((150, 150, 3)),
            L.Conv2D(16, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Dropout(0.2),
            L.Conv2D(32, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(64, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Dropout(0.2),
            L.Flatten(),
            L.Dense(512, activation="relu"),
            L.Dense(1, activation="sigmoid"),
        ]
    )
    rng = np.random.default_rng(SEED)
    # Glorot-sized weights, with biases, so that the sigmoid is not stuck at 0 or 1.
    for layer in m.layers:
        ws = layer.get_weights()
        if ws:
            k = ws[0]
            scale = np.sqrt(2.0 / np.prod(k.shape[:-1]))
            layer.set_weights(
                [rng.normal(0.0, scale, k.shape).astype(np.float32), rng.normal(0.0, 0.1, ws[1].shape).astype(np.float32)]
            )
    print("parameters:", m.count_params())
    m.save(os.path.join(out, "tutorial.keras"))
    names = images(out, 150)
    x = load_inputs(out, names)
    expected = {"images": names, "models": {"tutorial.keras": {"probabilities": as_convscope(m.predict(x, verbose=0))}}}
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(json.dumps(expected))


def check_export(safetensors_path, keras_path, predict_json):
    """Load convscope's exported files in PyTorch and Keras; compare with convscope predict."""
    import torch
    from safetensors import safe_open
    import tomllib

    with open(predict_json) as f:
        preds = json.load(f)
    paths = [p["image"] for p in preds]
    want = np.array([p["probabilities"] for p in preds], dtype=np.float64)
    x = np.stack([np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255.0 for p in paths])

    # PyTorch: the module is built from the config convscope wrote into the file's metadata;
    # parameters are `layers.{i}.weight` / `.bias`, i the index in [model].layers.
    with safe_open(safetensors_path, "pt") as f:
        meta = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}
    cfg = tomllib.loads(meta["convscope_config"])
    nn = torch.nn
    mods, relu = [], []
    for spec in cfg["model"]["layers"]:
        kind = spec["type"]
        if kind == "conv":
            w = state[f"layers.{len(mods)}.weight"]
            pad = (spec["kernel"] - 1) // 2 if spec["padding"] == "same" else 0
            mods.append(nn.Conv2d(w.shape[1], w.shape[0], spec["kernel"], stride=spec.get("stride", 1), padding=pad))
        elif kind == "maxpool":
            mods.append(nn.MaxPool2d(spec["size"]))
        elif kind == "dropout":
            mods.append(nn.Dropout(spec["rate"]))
        elif kind == "flatten":
            mods.append(nn.Flatten())
        else:
            w = state[f"layers.{len(mods)}.weight"]
            mods.append(nn.Linear(w.shape[1], w.shape[0]))
        relu.append(spec.get("activation", "none") == "relu")

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(mods)

        def forward(self, t):
            for m, r in zip(self.layers, relu):
                t = m(t)
                if r:
                    t = torch.relu(t)
            return t

    net = Net()
    net.load_state_dict(state)
    net.eval()
    with torch.no_grad():
        logits = net(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
        probs = torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)
    got_torch = np.array(as_convscope(probs.numpy()))

    import keras

    model = keras.models.load_model(keras_path)
    got_keras = np.array(as_convscope(model.predict(x, verbose=0)))
    result = {
        "images": len(paths),
        "torch_max_abs_diff": float(np.abs(got_torch - want).max()),
        "keras_max_abs_diff": float(np.abs(got_keras - want).max()),
    }
    print(json.dumps(result))
    if max(result["torch_max_abs_diff"], result["keras_max_abs_diff"]) > 1e-4:
        sys.exit("exported weights give other probabilities than convscope")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixtures")
    f.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "import"))
    g = sub.add_parser("full")
    g.add_argument("--out", required=True)
    c = sub.add_parser("check-export")
    c.add_argument("--safetensors", required=True)
    c.add_argument("--keras", required=True)
    c.add_argument("--predict", required=True)
    a = ap.parse_args()
    if a.cmd == "fixtures":
        fixtures(a.out)
    elif a.cmd == "full":
        full(a.out)
    else:
        check_export(a.safetensors, a.keras, a.predict)


if __name__ == "__main__":
    main()
