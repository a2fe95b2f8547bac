"""agcl-slicer as 3D Slicer meets it: the Execution Model XML it prints for a bare --xml, and a run
with the arguments Slicer passes (NRRD files in and out, flags by their longflag, the volumes by
index), read back with numpy alone. Slicer itself is not available here; this emulates it."""
import gzip
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from nifti import read_nifti  # noqa: E402

SLICER = os.environ["AGCL_SLICER"]
TOOL = os.environ["AGCL_TOOL"]
MODEL = os.environ["AGCL_SHIPPED_MODEL"]

# What Slicer's module parser reads of each parameter kind (ModuleDescriptionParser).
PARAMETER_TAGS = {"integer", "float", "double", "boolean", "string", "string-enumeration", "integer-enumeration",
                  "file", "directory", "image", "geometry", "point", "region", "table", "transform"}


def run(*args, **kwargs):
    return subprocess.run([SLICER, *args], capture_output=True, text=True, timeout=300, **kwargs)


def module_xml():
    done = run("--xml")
    assert done.returncode == 0, done.stderr
    return ET.fromstring(done.stdout)  # raises on a document that is not well-formed


def test_xml_has_what_slicer_reads():
    root = module_xml()
    assert root.tag == "executable"
    for tag in ("category", "title", "description", "version", "license", "contributor"):
        assert (root.findtext(tag) or "").strip(), tag
    groups = root.findall("parameters")
    assert groups
    names, flags, indices = set(), set(), []
    for group in groups:
        assert (group.findtext("label") or "").strip()
        for parameter in group:
            if parameter.tag in ("label", "description"):
                continue
            assert parameter.tag in PARAMETER_TAGS, parameter.tag
            name = parameter.findtext("name")
            assert name and name.isidentifier() and name not in names, name
            names.add(name)
            assert (parameter.findtext("label") or "").strip(), name
            index, longflag = parameter.findtext("index"), parameter.findtext("longflag")
            assert (index is None) != (longflag is None), f"{name}: exactly one of index and longflag"
            if index is not None:
                indices.append(int(index))
            else:
                assert not longflag.startswith("-") and longflag not in flags, longflag
                flags.add(longflag)
            if parameter.tag in ("image", "file"):
                assert parameter.findtext("channel") in ("input", "output"), name
            if parameter.tag == "string-enumeration":
                elements = [e.text for e in parameter.findall("element")]
                assert parameter.findtext("default") in elements, name
            if parameter.tag == "boolean":
                assert parameter.findtext("default") == "false", f"{name}: Slicer passes the flag only when true"
    assert sorted(indices) == list(range(len(indices)))
    images = {p.findtext("name"): p for g in groups for p in g.findall("image")}
    assert images["inputVolume"].findtext("channel") == "input" and images["inputVolume"].findtext("index") == "0"
    assert images["outputLabelMap"].get("type") == "label"
    assert images["outputLabelMap"].findtext("channel") == "output"
    assert images["outputLabelMap"].findtext("index") == "1"
    assert {"model", "device", "threads", "no-postprocessing"} <= flags


def write_nrrd(path, array, spacing):
    """A raw NRRD as Slicer writes a scalar volume (array indexed [x, y, z])."""
    header = ("NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\n"
              f"sizes: {array.shape[0]} {array.shape[1]} {array.shape[2]}\n"
              f"space directions: ({spacing[0]},0,0) (0,{spacing[1]},0) (0,0,{spacing[2]})\n"
              "kinds: domain domain domain\nendian: little\nencoding: raw\nspace origin: (0,0,0)\n\n")
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(np.asarray(array, dtype="<i2").tobytes(order="F"))


def read_nrrd(path):
    """(array indexed [x, y, z], header fields) of a NRRD with raw or gzip encoding."""
    with open(path, "rb") as f:
        data = f.read()
    end = data.index(b"\n\n")
    fields = {}
    for line in data[:end].decode("ascii").splitlines()[1:]:
        if ":" in line and not line.startswith("#"):
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip().lstrip("=").strip()
    body = data[end + 2:]
    if fields["encoding"] == "gzip":
        body = gzip.decompress(body)
    dtype = {"unsigned char": np.uint8, "uchar": np.uint8, "uint8": np.uint8}[fields["type"]]
    sizes = [int(s) for s in fields["sizes"].split()]
    return np.frombuffer(body, dtype=dtype).reshape(sizes, order="F"), fields


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slicer")
    done = subprocess.run([TOOL, "phantom", "--subjects", "1", "--modality", "contrast", "--size", "96", "96", "40",
                           "--seed", "31", "--split", "0:0:1", "--out", str(folder / "phantom")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ct, spacing = read_nifti(str(folder / "phantom/images/subject_000_contrast.nii.gz"))
    labels, _ = read_nifti(str(folder / "phantom/labels/subject_000_contrast_label.nii.gz"))
    write_nrrd(str(folder / "input.nrrd"), ct, spacing)
    return folder, labels


def test_runs_as_slicer_runs_it(phantom):
    folder, reference = phantom
    output = folder / "output.nrrd"
    done = run("--model", MODEL, "--device", "cpu", "--threads", "2", str(folder / "input.nrrd"), str(output))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "<filter-start>" in lines and "<filter-end>" in lines
    assert lines.index("<filter-start>") < lines.index("<filter-end>")
    progress = [float(line[len("<filter-progress>"):-len("</filter-progress>")])
                for line in lines if line.startswith("<filter-progress>")]
    assert len(progress) >= 3
    assert all(0.0 <= p <= 1.0 for p in progress)
    assert all(b >= a for a, b in zip(progress, progress[1:])), progress
    assert progress[-1] == pytest.approx(1.0)

    labels, fields = read_nrrd(str(output))
    assert labels.shape == reference.shape
    assert fields["type"] in ("unsigned char", "uchar", "uint8")
    organs = [o for o in np.unique(reference) if o != 0]
    assert set(np.unique(labels)) <= set(organs) | {0}
    # Dice per organ, counted here: the shipped model finds every organ of an unseen phantom.
    dice = {}
    for organ in organs:
        a, b = labels == organ, reference == organ
        dice[int(organ)] = 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())
    assert min(dice.values()) > 0.2, dice
    assert np.mean(list(dice.values())) > 0.7, dice


def test_bad_arguments_exit_1_naming_what(phantom):
    folder, _ = phantom
    done = run("--model", str(folder / "none.agcl"), str(folder / "input.nrrd"), str(folder / "out.nrrd"))
    assert done.returncode == 1 and "none.agcl" in done.stderr
    done = run("--model", MODEL, str(folder / "missing.nrrd"), str(folder / "out.nrrd"))
    assert done.returncode == 1 and "missing.nrrd" in done.stderr and "no such file" in done.stderr
    done = run("--model", MODEL, "--device", "tpu", str(folder / "input.nrrd"), str(folder / "out.nrrd"))
    assert done.returncode == 1 and "--device" in done.stderr
    done = run()
    assert done.returncode == 1 and "--xml" in done.stderr
    assert not (folder / "out.nrrd").exists()
