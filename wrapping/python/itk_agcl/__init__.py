"""AGCL for ITK in Python: abdominal CT organ segmentation (attention-guided, semantic-aware
contrastive learning) the way ITK Python users work.

    import itk_agcl
    ct = itk_agcl.imread("ct.nii.gz")
    labels = itk_agcl.agcl_segmentation_filter(ct, model_file_name="abdomen.agcl", device="cpu")
    itk_agcl.imwrite(labels, "organs.nii.gz")

or, object style:

    f = itk_agcl.AGCLSegmentationFilter.New(ct, ModelFileName="abdomen.agcl", Device="cpu")
    f.Update()
    labels = f.GetOutput()

Images are itk_agcl.Image objects (int16 CT, uint8 labels or float32 pixels) with GetSpacing /
GetOrigin / GetDirection in ITK's (x, y, z) order; itk_agcl.array_view_from_image gives a numpy
view (z, y, x) that shares the image's buffer and keeps the image alive. Errors from C++ arrive as
RuntimeError with the C++ message; wrong argument types or shapes raise TypeError or ValueError
naming the argument. The optional real ITK Python package is not needed.
"""
import json as _json

import numpy as _np

from . import native as _native

__version__ = _native.Version()

_DTYPES = {"int16": _np.int16, "uint8": _np.uint8, "float32": _np.float32}


class Image(object):
    """A 3D image with geometry. Construct with image_from_array or imread."""

    def __init__(self, native):
        if not isinstance(native, _native.Image):
            raise TypeError("Image: expected a native image; use itk_agcl.image_from_array or itk_agcl.imread")
        self._native = native

    # ITK-style geometry, (x, y, z) order.
    def GetSpacing(self):
        return tuple(self._native.GetSpacing())

    def SetSpacing(self, spacing):
        self._native.SetSpacing(_vector("spacing", spacing, 3))

    def GetOrigin(self):
        return tuple(self._native.GetOrigin())

    def SetOrigin(self, origin):
        self._native.SetOrigin(_vector("origin", origin, 3))

    def GetDirection(self):
        """The direction cosines as a 3 x 3 numpy array (rows = physical axes)."""
        return _np.array(self._native.GetDirection(), dtype=float).reshape(3, 3)

    def SetDirection(self, direction):
        self._native.SetDirection(_vector("direction", _np.asarray(direction, dtype=float).reshape(-1), 9))

    def GetPixelType(self):
        return self._native.GetPixelType()

    @property
    def shape(self):
        """(z, y, x), numpy's order."""
        return tuple(self._native.GetShape())

    @property
    def __array_interface__(self):
        # numpy views the buffer without a copy; the view's base is this object, which keeps the
        # native image (and its buffer) alive.
        return {"version": 3, "shape": self.shape, "typestr": _np.dtype(_DTYPES[self.GetPixelType()]).str,
                "data": (int(self._native.GetBufferAddress()), False)}

    def __repr__(self):
        return "itk_agcl.Image(%s, shape (z, y, x) = %s, spacing = %s)" % (self.GetPixelType(), self.shape,
                                                                           self.GetSpacing())


def _vector(name, values, n):
    try:
        out = [float(v) for v in values]
    except TypeError:
        raise TypeError("%s: expected %d numbers, got %r" % (name, n, type(values).__name__))
    if len(out) != n:
        raise ValueError("%s: expected %d numbers, got %d" % (name, n, len(out)))
    return out


def image_from_array(array, spacing=None, origin=None, direction=None):
    """A new Image from a 3D numpy array in (z, y, x) order (int16, uint8 or float32; the data are
    copied once). Geometry in ITK's (x, y, z) order; defaults: spacing 1, origin 0, identity."""
    if not isinstance(array, _np.ndarray):
        raise TypeError("array: expected a numpy.ndarray, got %s" % type(array).__name__)
    if array.ndim != 3:
        raise ValueError("array: expected 3 dimensions (z, y, x), got %d" % array.ndim)
    names = {_np.dtype(v): k for k, v in _DTYPES.items()}
    if array.dtype not in names:
        raise TypeError("array: dtype %s is not supported; expected int16 (CT), uint8 (labels) or float32"
                        % array.dtype)
    # numpy.i hands the array's buffer to C++ (no copy when C-contiguous); it is copied once into the image.
    native = {"int16": _native.Image.FromArrayInt16, "uint8": _native.Image.FromArrayUInt8,
              "float32": _native.Image.FromArrayFloat32}[names[array.dtype]](array)
    image = Image(native)
    if spacing is not None:
        image.SetSpacing(spacing)
    if origin is not None:
        image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    return image


def array_view_from_image(image):
    """A numpy view (z, y, x) of the image's buffer: no copy; writes go to the image."""
    image = _as_image(image, "image")
    return _np.asarray(image)


def array_from_image(image):
    """A numpy copy (z, y, x) of the image's pixels."""
    return array_view_from_image(image).copy()


def imread(file_name):
    """Reads a 3D volume with ITK's IO (NIfTI, NRRD, MetaImage, ...)."""
    if not isinstance(file_name, str):
        raise TypeError("file_name: expected a str, got %s" % type(file_name).__name__)
    return Image(_native.ReadImage(file_name))


def imwrite(image, file_name):
    """Writes an Image with ITK's IO (atomically: nothing half-written on failure)."""
    if not isinstance(file_name, str):
        raise TypeError("file_name: expected a str, got %s" % type(file_name).__name__)
    _native.WriteImage(_as_image(image, "image")._native, file_name)


def _as_image(value, name):
    if isinstance(value, Image):
        return value
    itk_image = _from_itk(value)
    if itk_image is not None:
        return itk_image
    raise TypeError("%s: expected an itk_agcl.Image (or an itk.Image when ITK Python is installed), got %s"
                    % (name, type(value).__name__))


def _from_itk(value):
    """An itk.Image from the real ITK Python package (optional) converted to an Image."""
    try:
        import itk  # noqa: F401 - optional
    except ImportError:
        return None
    if not hasattr(value, "GetLargestPossibleRegion"):
        return None
    array = itk.array_view_from_image(value)
    if array.dtype not in (_np.int16, _np.uint8, _np.float32):
        array = array.astype(_np.float32)
    return image_from_array(array, spacing=list(value.GetSpacing()), origin=list(value.GetOrigin()),
                            direction=_np.asarray(value.GetDirection()))


class AGCLSegmentationFilter(object):
    """itk::AGCLSegmentationFilter: CT (int16, or uint8/float32 converted) -> organ label map (uint8).

    Setters and getters as in C++ (SetModelFileName, SetDevice, SetBatchSize, SetSlabThickness,
    SetPostProcessing); SetProgressCallback(f) calls f(progress in 0..1); an exception raised by it
    aborts the filter and reaches the caller of Update. As in ITK, GetOutput() is the filter's own
    output image: a later Update of the same filter rewrites it (copy it, or use a new filter).
    """

    def __init__(self):
        self._native = _native.SegmentationFilter()
        self._input = None

    @classmethod
    def New(cls, *args, **kwargs):
        """New(image, ModelFileName=..., Device=...): positional argument = the input; keywords
        call the setter of that name."""
        f = cls()
        if len(args) > 1:
            raise TypeError("New: at most one positional argument (the input image)")
        if args:
            f.SetInput(args[0])
        for key, value in kwargs.items():
            setter = getattr(f, "Set" + key, None)
            if setter is None:
                raise TypeError("New: unknown keyword %r (expected a setter name such as ModelFileName)" % key)
            setter(value)
        return f

    def SetInput(self, image):
        self._input = _as_image(image, "input")
        self._native.SetInput(self._input._native)

    def GetInput(self):
        return self._input

    def SetModelFileName(self, file_name):
        self._native.SetModelFileName(_string("ModelFileName", file_name))

    def GetModelFileName(self):
        return self._native.GetModelFileName()

    def SetDevice(self, device):
        self._native.SetDevice(_string("Device", device))

    def GetDevice(self):
        return self._native.GetDevice()

    def SetBatchSize(self, size):
        self._native.SetBatchSize(_positive("BatchSize", size))

    def GetBatchSize(self):
        return self._native.GetBatchSize()

    def SetSlabThickness(self, slices):
        self._native.SetSlabThickness(_positive("SlabThickness", slices))

    def GetSlabThickness(self):
        return self._native.GetSlabThickness()

    def SetPostProcessing(self, on):
        self._native.SetPostProcessing(bool(on))

    def GetPostProcessing(self):
        return self._native.GetPostProcessing()

    def SetProgressCallback(self, callback):
        if callback is not None and not callable(callback):
            raise TypeError("ProgressCallback: expected a callable or None")
        self._native.SetProgressCallback(callback)

    def Update(self):
        self._native.Update()

    def GetOutput(self):
        return Image(self._native.GetOutput())

    def GetStageSeconds(self):
        return _json.loads(self._native.GetStageSecondsJson())

    def GetNumberOfPatches(self):
        return int(self._native.GetNumberOfPatches())


class CoarseAttentionFilter(object):
    """itk::CoarseAttentionFilter: CT -> coarse organ label map (GetCoarseLabelOutput) and one
    attention map per organ (GetAttentionMap(label)): the organ's coarse region dilated by
    MarginMM. The coarse map comes from SetCoarseLabelMap(labels) or a model's coarse network
    (SetModelFileName)."""

    def __init__(self):
        self._native = _native.CoarseAttentionFilter()
        self._input = None

    New = AGCLSegmentationFilter.__dict__["New"]

    def SetInput(self, image):
        self._input = _as_image(image, "input")
        self._native.SetInput(self._input._native)

    def GetInput(self):
        return self._input

    def SetCoarseLabelMap(self, labels):
        self._native.SetCoarseLabelMap(_as_image(labels, "CoarseLabelMap")._native)

    def SetModelFileName(self, file_name):
        self._native.SetModelFileName(_string("ModelFileName", file_name))

    def SetDevice(self, device):
        self._native.SetDevice(_string("Device", device))

    def GetDevice(self):
        return self._native.GetDevice()

    def SetMarginMM(self, margin):
        if isinstance(margin, bool) or not isinstance(margin, (int, float, _np.integer, _np.floating)):
            raise TypeError("MarginMM: expected a number, got %s" % type(margin).__name__)
        self._native.SetMarginMM(float(margin))

    def GetMarginMM(self):
        return self._native.GetMarginMM()

    def SetOrganLabels(self, labels):
        self._native.SetOrganLabels([int(v) for v in labels])

    def GetOrganLabels(self):
        return list(self._native.GetOrganLabels())

    def Update(self):
        self._native.Update()

    def GetCoarseLabelOutput(self):
        return Image(self._native.GetCoarseLabelOutput())

    def GetAttentionMap(self, label):
        return Image(self._native.GetAttentionMap(int(label)))


def _string(name, value):
    if not isinstance(value, str):
        raise TypeError("%s: expected a str, got %s" % (name, type(value).__name__))
    return value


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, _np.integer)):
        raise TypeError("%s: expected an int, got %s" % (name, type(value).__name__))
    if value < 1:
        raise ValueError("%s: expected >= 1, got %d" % (name, value))
    return int(value)


def agcl_segmentation_filter(image, model_file_name, device="cpu", batch_size=None, slab_thickness=None,
                             post_processing=True, progress=None):
    """Functional form: the organ label map of `image` (an Image of the input's geometry)."""
    f = AGCLSegmentationFilter.New(image, ModelFileName=model_file_name, Device=device,
                                   PostProcessing=post_processing)
    if batch_size is not None:
        f.SetBatchSize(batch_size)
    if slab_thickness is not None:
        f.SetSlabThickness(slab_thickness)
    if progress is not None:
        f.SetProgressCallback(progress)
    f.Update()
    return f.GetOutput()


def phantom(size=(96, 96, 40), seed=1, modality="contrast"):
    """One abdominal CT phantom subject: (CT Image int16, labels Image uint8 with BTCV's labels)."""
    ct, labels = _native.Phantom([int(s) for s in size], int(seed), _string("modality", modality))
    return Image(ct), Image(labels)


def segmentation_metrics(prediction, reference, labels):
    """Per organ: Dice, IoU, MSD/HD/HD95 in mm and the status (ok, reference_empty,
    prediction_empty, both_empty): a list of dicts (None where undefined)."""
    return _json.loads(_native.EvaluateJson(_as_image(prediction, "prediction")._native,
                                            _as_image(reference, "reference")._native, [int(v) for v in labels]))


def model_config(file_name):
    """A model bundle's configuration (validated together with its weights) as a dict."""
    return _json.loads(_native.ModelConfigJson(_string("file_name", file_name)))


class AGCLTrainer(object):
    """agcl::AGCLTrainer over a manifest, with the options of `agcl train` by their C++ names:

        trainer = itk_agcl.AGCLTrainer(mode="agcl", decoder_steps=200, label_fraction=0.2)
        model = trainer.Run("cohort.csv", "run/", config={"patch_size": 32})
    """

    def __init__(self, **options):
        self.options = dict(options)

    def Run(self, manifest, output_directory, config=None, progress=None):
        if progress is not None and not callable(progress):
            raise TypeError("progress: expected a callable or None")
        return _native.Train(_string("manifest", manifest), _string("output_directory", output_directory),
                             _json.dumps(config) if config is not None else "", _json.dumps(self.options), progress)


def _register_with_itk():
    """Makes the classes reachable as itk.AGCLSegmentationFilter etc. when ITK Python is there."""
    try:
        import itk
    except ImportError:
        return
    for name in ("AGCLSegmentationFilter", "AGCLTrainer"):
        setattr(itk, name, globals()[name])
    setattr(itk, "agcl_segmentation_filter", agcl_segmentation_filter)


_register_with_itk()
