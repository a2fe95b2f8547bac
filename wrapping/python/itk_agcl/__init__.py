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
    if not _is_itk_image(value):
        return None
    array = itk.array_view_from_image(value)
    if array.dtype not in (_np.int16, _np.uint8, _np.float32):
        array = array.astype(_np.float32)
    direction = value.GetDirection()  # an itk.Matrix: ITK Python's array_from_matrix reads it
    direction = itk.array_from_matrix(direction) if hasattr(itk, "array_from_matrix") else _np.asarray(direction)
    return image_from_array(array, spacing=list(value.GetSpacing()), origin=list(value.GetOrigin()),
                            direction=direction)


def _string(name, value):
    if not isinstance(value, str):
        raise TypeError("%s: expected a str, got %s" % (name, type(value).__name__))
    return value


def _integer(name, value, minimum=None):
    if isinstance(value, bool) or not isinstance(value, (int, _np.integer)):
        raise TypeError("%s: expected an int, got %s" % (name, type(value).__name__))
    if minimum is not None and value < minimum:
        raise ValueError("%s: expected >= %d, got %d" % (name, minimum, value))
    return int(value)


def _positive(name, value):
    return _integer(name, value, 1)


def _number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, _np.integer, _np.floating)):
        raise TypeError("%s: expected a number, got %s" % (name, type(value).__name__))
    return float(value)


_CHECKS = {"str": _string, "int": _integer, "positive": _positive, "number": _number,
           "bool": lambda name, value: bool(value), "seed": lambda name, value: _integer(name, value, 0)}


def _properties(**kinds):
    """Class decorator: SetX(value) / GetX() forwarding to the native object for each X=kind
    (the value checked by kind: str, int, positive, number, bool, seed)."""
    def decorate(cls):
        for name, kind in kinds.items():
            check = _CHECKS[kind]

            def setter(self, value, _name=name, _check=check):
                getattr(self._native, "Set" + _name)(_check(_name, value))

            def getter(self, _name=name):
                return getattr(self._native, "Get" + _name)()
            setter.__name__, getter.__name__ = "Set" + name, "Get" + name
            setattr(cls, "Set" + name, setter)
            setattr(cls, "Get" + name, getter)
        return cls
    return decorate


def _like_input(image, original):
    """`image` as an itk.Image when the filter's input `original` was one (ITK Python present),
    else unchanged."""
    if original is None or isinstance(original, Image) or not _is_itk_image(original):
        return image
    import itk
    out = itk.image_from_array(array_from_image(image))  # a copy: ITK owns its buffer
    out.SetSpacing([float(v) for v in image.GetSpacing()])
    out.SetOrigin([float(v) for v in image.GetOrigin()])
    out.SetDirection(itk.matrix_from_array(image.GetDirection()))
    return out


def _is_itk_image(value):
    return hasattr(value, "GetLargestPossibleRegion") and not isinstance(value, Image)


class _Filter(object):
    """What the wrapped filters share: New(input, **setters), SetInput/GetInput, Update."""

    _input_kind = "image"
    _original = None  # the input as given (an itk.Image is converted; outputs are converted back)

    @classmethod
    def New(cls, *args, **kwargs):
        """New(input, Name=value, ...): the positional argument is the input; each keyword calls
        the setter of that name (e.g. ModelFileName="m.agcl" calls SetModelFileName)."""
        f = cls()
        if len(args) > 1:
            raise TypeError("New: at most one positional argument (the input)")
        if args:
            f.SetInput(args[0])
        for key, value in kwargs.items():
            setter = getattr(f, "Set" + key, None)
            if setter is None:
                raise TypeError("New: unknown keyword %r (expected a setter name such as %s)"
                                % (key, cls._example_keyword))
            setter(value)
        return f

    def SetInput(self, value):
        if self._input_kind == "image":
            self._input = _as_image(value, "input")
            self._original = value
        else:
            self._input = _as_tensor_data(value, "input")
        self._native.SetInput(self._input._native)

    def GetInput(self):
        return self._original if self._original is not None else getattr(self, "_input", None)

    def Update(self):
        """Runs the filter (and whatever it depends on) without holding the GIL: other Python
        threads run meanwhile. Do not change the filter from another thread during Update."""
        self._native.Update()


class AGCLModelObject(object):
    """A model bundle (.agcl): the coarse network, the encoder and the decoder with their
    configuration, shared by the filters it is given to (SetModel).

        model = itk_agcl.AGCLModelObject.New()
        model.Load("abdomen.agcl")           # validated: config and every tensor's shape
        model.GetConfig()["organs"]
        model.Save("copy.agcl")              # atomic: nothing half-written on failure
        fresh = itk_agcl.AGCLModelObject.FromConfig({"patch_size": 32}, seed=1)  # random weights
    """

    def __init__(self, native=None):
        self._native = native

    @classmethod
    def New(cls):
        return cls()

    @classmethod
    def FromConfig(cls, config=None, seed=1):
        """New randomly initialised networks for `config` (a dict of ModelConfig keys; None for
        the defaults). Seeds torch's global generator with `seed`."""
        if config is not None and not isinstance(config, dict):
            raise TypeError("config: expected a dict or None, got %s" % type(config).__name__)
        return cls(_native.Model.FromConfig(_json.dumps(config) if config is not None else "",
                                            _integer("seed", seed, 0)))

    def Load(self, file_name):
        self._native = _native.Model.Load(_string("file_name", file_name))

    def Save(self, file_name):
        self._model().Save(_string("file_name", file_name))

    def GetConfig(self):
        return _json.loads(self._model().GetConfigJson())

    def GetFileName(self):
        return self._model().GetFileName()

    def _model(self):
        if self._native is None:
            raise ValueError("AGCLModelObject: no model yet (call Load or use FromConfig)")
        return self._native


def _picture_array(model, picture, what):
    """`picture` (numpy [H, W, C] or [H, W]) as a C-contiguous float32 [H, W, C] array for the 2D
    model `model` (an AGCLModelObject; None: no model check)."""
    if not isinstance(picture, _np.ndarray):
        raise TypeError("%s: expected a numpy.ndarray, got %s" % (what, type(picture).__name__))
    if picture.ndim == 2:
        picture = picture[:, :, None]
    if picture.ndim != 3 or 0 in picture.shape:
        raise ValueError("%s: expected [H, W, C] or [H, W], got shape %s" % (what, picture.shape,))
    if model is not None:
        image = model.GetConfig().get("image", {})
        if image.get("dimensions", 3) != 2:
            raise ValueError("model: a model for 3D volumes; pictures need a 2D model (image.dimensions 2)")
        if picture.shape[2] != image.get("channels", 1):
            raise ValueError("%s: %d channel(s) per pixel; the model reads %d (its image.channels)"
                             % (what, picture.shape[2], image.get("channels", 1)))
    return _np.ascontiguousarray(picture, dtype=_np.float32)


def _map_array(value, what):
    """A label or attention map (numpy [H, W], integer or bool values 0..255) as C-contiguous uint8."""
    if not isinstance(value, _np.ndarray):
        raise TypeError("%s: expected a numpy.ndarray, got %s" % (what, type(value).__name__))
    if value.ndim != 2 or 0 in value.shape:
        raise ValueError("%s: expected a map [H, W], got shape %s" % (what, value.shape,))
    if value.dtype != _np.bool_ and not _np.issubdtype(value.dtype, _np.integer):
        raise TypeError("%s: expected integer or bool values, got %s" % (what, value.dtype))
    if value.size and (value.min() < 0 or value.max() > 255):
        raise ValueError("%s: values outside 0..255" % what)
    return _np.ascontiguousarray(value, dtype=_np.uint8)


def _owned(view):
    return _np.array(_TensorOwner(view))  # a copy that owns its memory


def segment_picture(model, picture, device="cpu"):
    """A 2D model (image.dimensions 2) on one picture: `picture` a numpy array [H, W, C] (C the
    model's image.channels: an RGB array as numpy, PIL or imageio give it) or [H, W] for a
    one-channel model, any real dtype (0..255 for 8-bit photographs). Returns the label map, a
    numpy uint8 array [H, W] of the organs' label values (0 background). Lengths of the model
    (coarse spacing, patch spacing, margin) are in pixels. The single filters of the same path:
    PictureCoarseAttentionFilter, PictureQueryPatchSamplerFilter, AGCLEncoderFilter,
    ASPPDecoderFilter, PictureLabelFusionFilter."""
    if not isinstance(model, AGCLModelObject):
        raise TypeError("model: expected an itk_agcl.AGCLModelObject, got %s" % type(model).__name__)
    array = _picture_array(model, picture, "picture")
    return _owned(_native.SegmentPicture(model._model(), [int(n) for n in array.shape], array,
                                         _string("device", device)))


def load_model(file_name):
    """The model bundle in `file_name` (an AGCLModelObject)."""
    model = AGCLModelObject()
    model.Load(file_name)
    return model


def _as_model(value, name):
    if isinstance(value, AGCLModelObject):
        return value._model()
    raise TypeError("%s: expected an itk_agcl.AGCLModelObject, got %s" % (name, type(value).__name__))


_TYPESTR = {"float32": "<f4", "float64": "<f8", "float16": "<f2", "int64": "<i8", "int32": "<i4",
            "int16": "<i2", "int8": "|i1", "uint8": "|u1", "bool": "|b1"}


class _TensorOwner(object):
    """Keeps a native tensor view alive for the numpy arrays that view it."""

    def __init__(self, view):
        self._view = view
        shape = tuple(view.GetShape())
        self.__array_interface__ = {"version": 3, "shape": shape, "typestr": _TYPESTR[view.GetDType()],
                                    "data": (int(view.GetBufferAddress()), True)}


class TensorDataObject(object):
    """itk::TensorDataObject in Python: named tensors with a batch dimension (numpy arrays) and
    per-item metadata (a list of dicts with organ, modality, slice, index, origin, spacing, axes).

    GetTensor(name) is a read-only numpy view of the tensor (no copy when it is a contiguous CPU
    tensor; the view keeps it alive); SetTensor(name, array) copies the array once into a new
    tensor. The patch filters pass these between them: the sampler's "image" [N, 2, P, P], the
    encoder's "low_level" / "high_level", the decoder's "probability" [N, 1, P, P]."""

    def __init__(self, native=None):
        self._native = native if native is not None else _native.TensorData()

    @classmethod
    def New(cls):
        return cls()

    def GetTensorNames(self):
        return list(self._native.GetTensorNames())

    def HasTensor(self, name):
        return self._native.HasTensor(_string("name", name))

    def GetTensor(self, name):
        view = self._native.GetTensor(_string("name", name))
        if view.GetBufferSize() == 0:
            return _np.empty(tuple(view.GetShape()), dtype=_np.dtype(_TYPESTR[view.GetDType()]))
        return _np.asarray(_TensorOwner(view))

    def SetTensor(self, name, array):
        _string("name", name)
        if not isinstance(array, _np.ndarray):
            raise TypeError("%s: expected a numpy.ndarray, got %s" % (name, type(array).__name__))
        if array.ndim < 1:
            raise ValueError("%s: expected a batch dimension [N, ...], got a 0-d array" % name)
        names = {_np.dtype(v): k for k, v in _TYPESTR.items()}
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        if dtype not in names:
            raise TypeError("%s: dtype %s is not supported (expected one of %s)"
                            % (name, array.dtype, ", ".join(sorted(_TYPESTR))))
        array = _np.ascontiguousarray(array, dtype=dtype)  # a copy only when not C-contiguous
        self._native.SetTensorFromBuffer(name, names[dtype], [int(n) for n in array.shape], array)

    def RemoveTensor(self, name):
        self._native.RemoveTensor(_string("name", name))

    def GetMetadata(self):
        return _json.loads(self._native.GetMetadataJson())

    def SetMetadata(self, metadata):
        if not isinstance(metadata, (list, tuple)):
            raise TypeError("metadata: expected a list of dicts, got %s" % type(metadata).__name__)
        self._native.SetMetadataJson(_json.dumps([_plain(item) for item in metadata]))

    def GetNumberOfItems(self):
        return int(self._native.GetNumberOfItems())

    def __repr__(self):
        return "itk_agcl.TensorDataObject(%d items, tensors %s)" % (self.GetNumberOfItems(), self.GetTensorNames())


def _plain(item):
    """numpy scalars and arrays in a metadata dict as plain Python numbers and lists."""
    if not isinstance(item, dict):
        raise TypeError("metadata: expected dicts, got %s" % type(item).__name__)
    return {k: (_np.asarray(v).tolist() if isinstance(v, (_np.ndarray, _np.generic, list, tuple)) else v)
            for k, v in item.items()}


def _as_tensor_data(value, name):
    if isinstance(value, TensorDataObject):
        return value
    raise TypeError("%s: expected an itk_agcl.TensorDataObject, got %s" % (name, type(value).__name__))


@_properties(ModelFileName="str", Device="str", BatchSize="positive", SlabThickness="positive",
             PostProcessing="bool", Precision="str", TensorPatchStages="bool")
class AGCLSegmentationFilter(_Filter):
    """itk::AGCLSegmentationFilter: CT (int16, or uint8/float32 converted) -> organ label map (uint8).

    Setters and getters as in C++ (SetModelFileName or SetModel, SetDevice, SetBatchSize,
    SetSlabThickness, SetPostProcessing, SetPrecision: "float32", "bfloat16" or "float16" (CUDA),
    SetTensorPatchStages); SetProgressCallback(f) calls f(progress in 0..1); an
    exception raised by it aborts the filter and reaches the caller of Update. Update releases
    the GIL (the callback takes it back for each call). GetOutput() is the label map of the last
    Update (no copy); a later Update makes a new one and leaves it, and numpy views of it, alone.
    """

    _example_keyword = "ModelFileName"

    def __init__(self):
        self._native = _native.SegmentationFilter()

    def SetModel(self, model):
        self._model = model
        self._native.SetModel(_as_model(model, "Model"))

    def SetProgressCallback(self, callback):
        if callback is not None and not callable(callback):
            raise TypeError("ProgressCallback: expected a callable or None")
        self._native.SetProgressCallback(callback)

    def GetOutput(self):
        """The label map: an itk_agcl.Image, or an itk.Image when the input was one."""
        return _like_input(Image(self._native.GetOutput()), self._original)

    def GetStageSeconds(self):
        return _json.loads(self._native.GetStageSecondsJson())

    def GetOrganReport(self):
        """The organs of the last Update: {"organs": [{"label", "name", "voxels", "volume_ml",
        "mean_probability" (None without voxels), "warning"}], "statistics", "warnings"}."""
        return _json.loads(self._native.GetOrganReportJson())

    def GetNumberOfPatches(self):
        return int(self._native.GetNumberOfPatches())


@_properties(Device="str", MarginMM="number")
class CoarseAttentionFilter(_Filter):
    """itk::CoarseAttentionFilter: CT -> coarse organ label map (GetCoarseLabelOutput) and one
    attention map per organ (GetAttentionMap(label)): the organ's coarse region dilated by
    MarginMM. The coarse map comes from SetCoarseLabelMap(labels) or a model's coarse network
    (SetModelFileName or SetModel)."""

    _example_keyword = "ModelFileName"

    def __init__(self):
        self._native = _native.CoarseAttentionFilter()

    def SetCoarseLabelMap(self, labels):
        self._coarse = _as_image(labels, "CoarseLabelMap")
        self._native.SetCoarseLabelMap(self._coarse._native)

    def SetModelFileName(self, file_name):
        self._native.SetModelFileName(_string("ModelFileName", file_name))

    def SetModel(self, model):
        self._model = model
        self._native.SetModel(_as_model(model, "Model"))

    def SetOrganLabels(self, labels):
        self._native.SetOrganLabels([int(v) for v in labels])

    def GetOrganLabels(self):
        return list(self._native.GetOrganLabels())

    def GetCoarseLabelOutput(self):
        return _like_input(Image(self._native.GetCoarseLabelOutput()), self._original)

    def GetAttentionMap(self, label):
        return _like_input(Image(self._native.GetAttentionMap(int(label))), self._original)

    def GetCoarseProbabilityMap(self, label):
        """The coarse network's probability of organ `label` on the model's coarse grid (float32;
        after Update with a model): LabelFusionFilter.SetCoarseProbabilityMap takes it."""
        return Image(self._native.GetCoarseProbabilityMap(_integer("label", label)))


@_properties(Mode="str", PatchSize="positive", PatchSpacingMM="number", PatchesPerOrgan="positive",
             Overlap="number", Seed="seed", WindowLow="number", WindowHigh="number", Modality="int")
class QueryPatchSamplerFilter(_Filter):
    """itk::QueryPatchSamplerFilter: axial query patches of the CT where the organs' attention
    maps (SetAttentionMap(label, map)) are non-zero -> TensorDataObject with "image" [N, 2, P, P]
    (channel 0: the CT clipped to the window and scaled to 0..1; channel 1: the attention, 0/1)
    and one metadata dict per patch. Mode "inference" (a grid over
    each attended box, Overlap) or "training" (PatchesPerOrgan random patches per organ, Seed;
    SetLabelMap adds "label" [N, 1, P, P], 1 on the patch's organ). PatchSpacingMM 0 keeps the image's spacing. A model's values are
    in its configuration: patch_size, patch_spacing_mm, overlap, window."""

    _example_keyword = "PatchSize"

    def __init__(self):
        self._native = _native.QueryPatchSamplerFilter()
        self._maps = {}

    def SetAttentionMap(self, label, attention):
        image = _as_image(attention, "attention")
        self._maps[int(label)] = image
        self._native.SetAttentionMap(_integer("label", label), image._native)

    def SetLabelMap(self, labels):
        self._labels = _as_image(labels, "LabelMap")
        self._native.SetLabelMap(self._labels._native)

    def GetOutput(self):
        return TensorDataObject(self._native.GetOutput())


class _NetworkFilter(_Filter):
    _input_kind = "tensors"
    _example_keyword = "Device"

    def SetModel(self, model):
        self._model = model
        self._native.SetModel(_as_model(model, "Model"))

    def GetOutput(self):
        return TensorDataObject(self._native.GetOutput())


@_properties(Device="str", BatchSize="positive")
class AGCLEncoderFilter(_NetworkFilter):
    """itk::AGCLEncoderFilter: the model's encoder (SetModel) on the patches' "image" ->
    "low_level" and "high_level" feature tensors, in batches of BatchSize on Device."""

    def __init__(self):
        self._native = _native.NetworkFilter("encoder")


@_properties(Device="str", BatchSize="positive")
class ASPPDecoderFilter(_NetworkFilter):
    """itk::ASPPDecoderFilter: the model's ASPP decoder (SetModel) on the encoder's features ->
    "probability" [N, 1, P, P] (the patch's organ), in batches of BatchSize on Device."""

    def __init__(self):
        self._native = _native.NetworkFilter("decoder")


@_properties(Threshold="number", GaussianWeighting="bool", PostProcessing="bool", ProbabilityMaps="bool",
             CoarseWeight="number", CoarseVoteScaledToPeak="bool")
class LabelFusionFilter(_Filter):
    """itk::LabelFusionFilter: the patches' "probability" (SetPatches) averaged back onto the
    reference image's grid (SetReferenceImage) within each organ's attention map
    (SetAttentionMap(label, map)), thresholded, the organ with the highest score per voxel ->
    label map (uint8); SetOrganThreshold(label, t) gives an organ its own threshold (organs then
    compete by their score's margin above their own threshold). With CoarseWeight w > 0 and SetCoarseProbabilityMap(label, map) (from
    CoarseAttentionFilter.GetCoarseProbabilityMap), an organ's score is (1 - w) x its averaged
    probability + w x the coarse probability interpolated at the voxel (with
    CoarseVoteScaledToPeak, divided first by that organ's largest coarse probability). PostProcessing keeps
    each organ's largest component and fills its holes; ProbabilityMaps keeps the scores
    (GetProbabilityMap(label))."""

    _input_kind = "tensors"
    _example_keyword = "Threshold"

    def __init__(self):
        self._native = _native.LabelFusionFilter()
        self._maps = {}

    def SetInput(self, patches):
        self.SetPatches(patches)

    def SetPatches(self, patches):
        self._input = _as_tensor_data(patches, "patches")
        self._native.SetPatches(self._input._native)

    def SetReferenceImage(self, reference):
        self._reference = _as_image(reference, "reference")
        self._original = reference
        self._native.SetReferenceImage(self._reference._native)

    def SetAttentionMap(self, label, attention):
        image = _as_image(attention, "attention")
        self._maps[int(label)] = image
        self._native.SetAttentionMap(_integer("label", label), image._native)

    def SetCoarseProbabilityMap(self, label, probability):
        image = _as_image(probability, "coarse probability")
        self._maps[("coarse", int(label))] = image
        self._native.SetCoarseProbabilityMap(_integer("label", label), image._native)

    def GetOutput(self):
        """The label map: an itk_agcl.Image, or an itk.Image when the reference image was one."""
        return _like_input(Image(self._native.GetOutput()), self._original)

    def GetProbabilityMap(self, label):
        return _like_input(Image(self._native.GetProbabilityMap(_integer("label", label))), self._original)

    def SetOrganThreshold(self, label, threshold):
        self._native.SetOrganThreshold(_integer("label", label), _number("threshold", threshold))

    def GetOrganThreshold(self, label):
        return self._native.GetOrganThreshold(_integer("label", label))


class _PictureModelFilter(_Filter):
    """What the picture filters share: a 2D model (SetModel) and, for those that read them, the
    organs' attention maps (numpy [H, W])."""

    _example_keyword = "Model"
    _model_object = None

    def SetModel(self, model):
        if not isinstance(model, AGCLModelObject):
            raise TypeError("Model: expected an itk_agcl.AGCLModelObject, got %s" % type(model).__name__)
        self._model_object = model
        self._native.SetModel(model._model())

    def _set_attention_map(self, label, attention):
        array = _map_array(attention, "attention map of label %s" % label)
        self._native.SetAttentionMap(_integer("label", label), [int(n) for n in array.shape], array)


class _PictureFilter(_PictureModelFilter):
    """A picture filter whose input is a numpy picture [H, W, C] or [H, W] (checked against the
    model's channels when the model is set first; the C++ filter checks it again)."""

    _input = None

    def SetInput(self, picture):
        self._input = _picture_array(self._model_object, picture, "input")
        self._original = picture
        self._native.SetInput([int(n) for n in self._input.shape], self._input)


@_properties(Device="str")
class PictureCoarseAttentionFilter(_PictureFilter):
    """itk::PictureCoarseAttentionFilter: the coarse stage of a 2D model (SetModel) on a numpy
    picture -> GetCoarseLabelOutput() (uint8 [H, W], the label values), GetAttentionMap(label)
    (uint8 [H, W], 1 inside the organ's coarse region grown by the model's margin, in pixels) and
    GetCoarseProbabilities() (float32 [O, 1, h, w] on the coarse grid, for
    PictureLabelFusionFilter's coarse vote)."""

    def __init__(self):
        self._native = _native.PictureCoarseAttentionFilter()

    def GetCoarseLabelOutput(self):
        return _owned(self._native.GetCoarseLabelOutput())

    def GetAttentionMap(self, label):
        return _owned(self._native.GetAttentionMap(_integer("label", label)))

    def GetCoarseProbabilities(self):
        return _owned(self._native.GetCoarseProbabilities())


@_properties(Training="bool", PatchesPerOrgan="positive", Seed="seed", Overlap="number", Modality="int")
class PictureQueryPatchSamplerFilter(_PictureFilter):
    """itk::PictureQueryPatchSamplerFilter: query patches of a numpy picture where the organs'
    attention maps (SetAttentionMap(label, map [H, W])) are set -> TensorDataObject "image"
    [N, C + 1, P, P] (the model's normalisation of the C channels, then the attention). Inference
    (default): tiles covering each organ's attention box (Overlap); Training: PatchesPerOrgan
    centres per organ drawn among its attention pixels (Seed), and with SetLabelMap(labels [H, W],
    255 void) "label" [N, 1, P, P] (1 the patch's organ, 0 not, 255 ignored)."""

    def __init__(self):
        self._native = _native.PictureQueryPatchSamplerFilter()

    def SetAttentionMap(self, label, attention):
        self._set_attention_map(label, attention)

    def SetLabelMap(self, labels):
        array = _map_array(labels, "label map")
        self._native.SetLabelMap([int(n) for n in array.shape], array)

    def GetOutput(self):
        return TensorDataObject(self._native.GetOutput())


@_properties(GaussianWeighting="bool")
class PictureLabelFusionFilter(_PictureModelFilter):
    """itk::PictureLabelFusionFilter: the patches' "probability" (SetPatches, from
    ASPPDecoderFilter) fused within each organ's attention map (SetAttentionMap(label, map)),
    with the coarse vote of the model's coarse_weight when SetCoarseProbabilities(array) is given
    (PictureCoarseAttentionFilter.GetCoarseProbabilities()), then the model's thresholds ->
    GetOutput(), uint8 [H, W] of a picture of SetReferenceSize(H, W) (SetReferenceImage(array)
    takes the size of an array [H, W] or [H, W, C])."""

    _input_kind = "tensors"

    def __init__(self):
        self._native = _native.PictureLabelFusionFilter()

    def SetInput(self, patches):
        self.SetPatches(patches)

    def SetPatches(self, patches):
        self._input = _as_tensor_data(patches, "patches")
        self._native.SetPatches(self._input._native)

    def SetReferenceSize(self, size):
        height, width = (_positive("height", size[0]), _positive("width", size[1]))
        self._native.SetReferenceSize(height, width)

    def SetReferenceImage(self, array):
        if not isinstance(array, _np.ndarray) or array.ndim not in (2, 3):
            raise TypeError("reference: expected a numpy array [H, W] or [H, W, C]")
        self.SetReferenceSize(array.shape[:2])

    def SetAttentionMap(self, label, attention):
        self._set_attention_map(label, attention)

    def SetCoarseProbabilities(self, probabilities):
        if not isinstance(probabilities, _np.ndarray):
            raise TypeError("coarse probabilities: expected a numpy.ndarray, got %s" % type(probabilities).__name__)
        array = _np.ascontiguousarray(probabilities, dtype=_np.float32)
        self._native.SetCoarseProbabilities([int(n) for n in array.shape], array)

    def GetOutput(self):
        return _owned(self._native.GetOutput())


def agcl_segmentation_filter(image, model_file_name, device="cpu", batch_size=None, slab_thickness=None,
                             post_processing=True, progress=None):
    """Functional form: the organ label map of `image` (an Image of the input's geometry; an
    itk.Image when `image` is one)."""
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


def calibrate_model(model_file, manifest, out_file, split="val", device="cpu"):
    """Segments the `split` volumes of `manifest` (at least 6) with the model and writes it, with
    the statistics of its own predictions (organ volume ranges, intensity histogram: what
    GetOrganReport() checks a result against), to `out_file` (may be `model_file`). Returns the
    statistics as a dict. As `agcl calibrate`."""
    return _json.loads(_native.CalibrateModel(_string("model_file", model_file), _string("manifest", manifest),
                                              _string("out_file", out_file), _string("split", split),
                                              _string("device", device)))


class AGCLTrainer(object):
    """agcl::AGCLTrainer over a manifest, with the options of `agcl train` by their C++ names:

        trainer = itk_agcl.AGCLTrainer(mode="agcl", decoder_steps=200, label_fraction=0.2)
        model = trainer.Run("cohort.csv", "run/", config={"patch_size": 32})

    As `agcl train`, a run that ends with stage 2 calibrates the model on the manifest's
    validation volumes when there are at least 6 (see calibrate_model)."""

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
    for name in ("AGCLSegmentationFilter", "CoarseAttentionFilter", "QueryPatchSamplerFilter", "AGCLEncoderFilter",
                 "ASPPDecoderFilter", "LabelFusionFilter", "AGCLModelObject", "AGCLTrainer",
                 "PictureCoarseAttentionFilter", "PictureQueryPatchSamplerFilter", "PictureLabelFusionFilter"):
        setattr(itk, name, globals()[name])
    setattr(itk, "agcl_segmentation_filter", agcl_segmentation_filter)


_register_with_itk()
