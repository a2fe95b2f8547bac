"""agcl embed's PCA and 1-NN accuracies against numpy, from the representations it exports
(--representations). Environment: AGCL_TOOL (the agcl tool), AGCL_TRAIN_DIR (the cli.train
test's folder: ph/manifest.csv and run/model.agcl)."""
import csv
import os
import re
import subprocess

import numpy as np

AGCL = os.environ["AGCL_TOOL"]
TRAIN = os.environ["AGCL_TRAIN_DIR"]


def read(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return rows


def nearest_neighbour_accuracy(x, classes):
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -2.0)
    return float(np.mean(classes[similarity.argmax(axis=1)] == classes))


def test_pca_and_accuracies_match_numpy(tmp_path):
    out = subprocess.run([AGCL, "embed", "--model", os.path.join(TRAIN, "run", "model.agcl"), "--manifest",
                          os.path.join(TRAIN, "ph", "manifest.csv"), "--split", "all", "--patches-per-organ", "3",
                          "--attention", "truth", "--representations", "--out", str(tmp_path)],
                         check=True, capture_output=True, text=True).stdout
    representations = read(tmp_path / "representations.csv")
    embedding = read(tmp_path / "embedding.csv")
    assert len(representations) == len(embedding) > 10
    for r, e in zip(representations, embedding):
        assert [r[k] for k in ("subject", "image", "modality", "organ")] == \
               [e[k] for k in ("subject", "image", "modality", "organ")]
    columns = [k for k in representations[0] if re.fullmatch(r"r\d+", k)]
    x = np.array([[float(row[k]) for k in columns] for row in representations])
    assert x.shape[1] > 2 and np.isfinite(x).all()

    # PCA in double precision: the two leading right singular vectors of the centred data,
    # each up to its sign.
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    got = np.array([[float(row["pc1"]), float(row["pc2"])] for row in embedding])
    for c in range(2):
        sign = np.sign(np.dot(expected[:, c], got[:, c]))
        np.testing.assert_allclose(got[:, c], sign * expected[:, c], rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    variance = s ** 2 / np.sum(s ** 2)
    printed = re.search(r"explained variance: PC1 ([0-9.]+), PC2 ([0-9.]+)", out)
    assert abs(float(printed.group(1)) - variance[0]) < 6e-5 and abs(float(printed.group(2)) - variance[1]) < 6e-5

    organ = np.array([row["organ"] for row in representations])
    modality = np.array([row["modality"] for row in representations])
    accuracies = re.search(r"organ ([0-9.]+), modality ([0-9.]+), modality x organ ([0-9.]+)", out)
    for value, classes in zip(accuracies.groups(), (organ, modality, np.char.add(modality, organ))):
        assert abs(float(value) - nearest_neighbour_accuracy(x, classes)) < 6e-5
