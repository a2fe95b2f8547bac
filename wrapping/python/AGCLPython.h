/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_python_AGCLPython_h
#define agcl_python_AGCLPython_h

// The C++ side of the Python module itk_agcl: a few non-template classes over the ITK layer,
// so that SWIG sees neither ITK's templates nor LibTorch (this header includes neither; the
// wrapper compiles in seconds). The Python package (itk_agcl/__init__.py) builds the ITK
// Python idioms on top: New(**kwargs), snake_case functions, numpy views.
//
// Errors: every function throws std::runtime_error (or std::invalid_argument for bad
// arguments) with the C++ message; the SWIG %exception turns them into Python exceptions.
//
// The GIL: Update, training, model and image IO release it (AGCLPythonInternal.h); Python
// callbacks take it back for each call, and an exception raised in one is raised in the
// caller's thread after the C++ call has unwound.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct _object;
typedef _object PyObject;

namespace agcl::python {

/** A 3D image: int16 (CT), uint8 (labels) or float32 pixels, with spacing, origin and direction
 *  (row-major 3 x 3). Holds an itk::Image; copies share it (reference counting). */
class Image
{
public:
  Image();
  ~Image();
  Image(const Image &);
  Image &
  operator=(const Image &);

  /** A new image of `pixelType` with `shape` (z, y, x), a copy of `data` (C-contiguous,
   *  nbytes = the voxel count x the pixel size), spacing 1, origin 0, identity direction. */
  static Image
  FromBuffer(const std::string & pixelType, const std::vector<int64_t> & shape, uintptr_t data, uint64_t nbytes);

  /** From a numpy array (z, y, x) through numpy.i: the array is used in place when it is
   *  C-contiguous with this dtype, and copied once into the image. */
  static Image
  FromArrayInt16(const short * data, int nz, int ny, int nx);
  static Image
  FromArrayUInt8(const unsigned char * data, int nz, int ny, int nx);
  static Image
  FromArrayFloat32(const float * data, int nz, int ny, int nx);

  /** "int16", "uint8" or "float32". */
  std::string
  GetPixelType() const;
  /** (z, y, x): numpy's order of the buffer. */
  std::vector<int64_t>
  GetShape() const;
  /** The buffer's address and byte count: numpy views it without a copy. */
  uintptr_t
  GetBufferAddress() const;
  uint64_t
  GetBufferSize() const;

  /** ITK's (x, y, z) order, as itk.Image. */
  std::vector<double>
  GetSpacing() const;
  void
  SetSpacing(const std::vector<double> & spacing);
  std::vector<double>
  GetOrigin() const;
  void
  SetOrigin(const std::vector<double> & origin);
  /** Row-major 3 x 3. */
  std::vector<double>
  GetDirection() const;
  void
  SetDirection(const std::vector<double> & direction);

  /** A copy with int16 pixels (rounded, range-checked) or the same image if already int16. */
  Image
  AsInt16() const;

  // Not wrapped: the ITK image (an itk::Image<T, 3>*, T per GetPixelType()).
  void *
  GetITKImage() const;
  static Image
  FromITK(void * itkImage, const std::string & pixelType);

private:
  struct Holder;
  std::shared_ptr<Holder> m_Holder;
};

/** Reads any image ITK reads (NIfTI, NRRD, MetaImage, ...) or a folder holding a DICOM series
 *  (the series with the most files; int16); 8-bit unsigned files become uint8, floating-point
 *  ones float32, other integers int16 (values outside the int16 range are an error, not
 *  wrapped). */
Image
ReadImage(const std::string & fileName);
/** Writes atomically (temporary file + rename). */
void
WriteImage(const Image & image, const std::string & fileName);

/** A model bundle held as an itk::AGCLModelObject (shared by the filters it is given to):
 *  loaded from a file, or new random networks for a configuration; saved atomically. */
class Model
{
public:
  Model();
  ~Model();
  Model(const Model &);
  Model &
  operator=(const Model &);

  /** Reads and validates a bundle (config and every tensor's shape). */
  static Model
  Load(const std::string & fileName);
  /** Randomly initialised networks for `configJson` (ModelConfig keys; "" or "{}" for the
   *  defaults), from torch's generator seeded with `seed`. */
  static Model
  FromConfig(const std::string & configJson, uint64_t seed);
  /** Writes the bundle (temporary file + rename: nothing half-written is left on failure). */
  void
  Save(const std::string & fileName) const;
  /** The configuration as JSON. */
  std::string
  GetConfigJson() const;
  /** The file it was loaded from ("" for a model made in memory). */
  std::string
  GetFileName() const;

  // Not wrapped: the itk::AGCLModelObject.
  void *
  GetITKModel() const;

private:
  struct Holder;
  std::shared_ptr<Holder> m_Holder;
};

/** A read-only view of one tensor: a contiguous CPU copy when the tensor is elsewhere or
 *  strided, else the tensor itself (shared storage). numpy views it through the address. */
class TensorView
{
public:
  TensorView();
  ~TensorView();
  TensorView(const TensorView &);
  /** "float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8" or "bool". */
  std::string
  GetDType() const;
  std::vector<int64_t>
  GetShape() const;
  uintptr_t
  GetBufferAddress() const;
  uint64_t
  GetBufferSize() const;

  // Not wrapped: builds the view of an at::Tensor (passed as void*).
  static TensorView
  FromTensor(const void * tensor);

private:
  struct Holder;
  std::shared_ptr<Holder> m_Holder;
};

/** itk::TensorDataObject: named tensors with a batch dimension plus per-item metadata
 *  (organ, modality, slice, index, origin, spacing, axes). Copies share the object. */
class TensorData
{
public:
  TensorData();
  ~TensorData();
  TensorData(const TensorData &);
  TensorData &
  operator=(const TensorData &);

  std::vector<std::string>
  GetTensorNames() const;
  bool
  HasTensor(const std::string & name) const;
  TensorView
  GetTensor(const std::string & name) const;
  /** A new CPU tensor of `dtype` and `shape`, a copy of `buffer`: any Python object with a
   *  C-contiguous buffer (a numpy array) of exactly the shape's byte count, checked before
   *  anything is allocated. Takes no raw address: nothing from Python can make it read
   *  arbitrary memory. */
  void
  SetTensorFromBuffer(const std::string &          name,
                      const std::string &          dtype,
                      const std::vector<int64_t> & shape,
                      PyObject *                   buffer);
  void
  RemoveTensor(const std::string & name);
  /** JSON list, one object per item: organ, modality, slice, index [3], origin [3] (mm),
   *  spacing [2] (mm), axes [6] (unit directions of the patch's columns, then rows). */
  std::string
  GetMetadataJson() const;
  /** The same form; every key is optional (default 0), an unknown key is an error. */
  void
  SetMetadataJson(const std::string & json);
  int64_t
  GetNumberOfItems() const;

  // Not wrapped: the itk::TensorDataObject.
  void *
  GetITKObject() const;
  static TensorData
  FromITK(void * object);

private:
  struct Holder;
  std::shared_ptr<Holder> m_Holder;
};

/** itk::QueryPatchSamplerFilter<Image<short,3>, Image<unsigned char,3>>: axial patches of the CT
 *  (window-normalised) where the organs' attention maps are set -> TensorData "image" [N,1,P,P]
 *  (and "label" in training mode). */
class QueryPatchSamplerFilter
{
public:
  QueryPatchSamplerFilter();
  ~QueryPatchSamplerFilter();
  void
  SetInput(const Image & image);
  void
  SetAttentionMap(int organ, const Image & attention);
  void
  SetLabelMap(const Image & labels);
  /** "inference" (a grid over each attended box) or "training" (random patches per organ). */
  void
  SetMode(const std::string & mode);
  std::string
  GetMode() const;
  void
  SetPatchSize(unsigned int size);
  unsigned int
  GetPatchSize() const;
  void
  SetPatchSpacingMM(double spacing);
  double
  GetPatchSpacingMM() const;
  void
  SetPatchesPerOrgan(unsigned int count);
  unsigned int
  GetPatchesPerOrgan() const;
  void
  SetOverlap(double overlap);
  double
  GetOverlap() const;
  void
  SetSeed(uint64_t seed);
  uint64_t
  GetSeed() const;
  void
  SetWindowLow(double hu);
  double
  GetWindowLow() const;
  void
  SetWindowHigh(double hu);
  double
  GetWindowHigh() const;
  void
  SetModality(int modality);
  int
  GetModality() const;
  void
  Update();
  TensorData
  GetOutput() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_Impl;
};

/** itk::AGCLEncoderFilter (kind "encoder": "image" -> "low_level", "high_level") or
 *  itk::ASPPDecoderFilter (kind "decoder": -> "probability" [N,1,P,P]) with a model's network. */
class NetworkFilter
{
public:
  explicit NetworkFilter(const std::string & kind);
  ~NetworkFilter();
  void
  SetInput(const TensorData & input);
  void
  SetModel(const Model & model);
  void
  SetDevice(const std::string & device);
  std::string
  GetDevice() const;
  void
  SetBatchSize(unsigned int size);
  unsigned int
  GetBatchSize() const;
  void
  Update();
  TensorData
  GetOutput() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_Impl;
};

/** itk::LabelFusionFilter<Image<unsigned char,3>>: patch probabilities -> label map on the
 *  reference image's grid. */
class LabelFusionFilter
{
public:
  LabelFusionFilter();
  ~LabelFusionFilter();
  void
  SetPatches(const TensorData & patches);
  void
  SetReferenceImage(const Image & reference);
  void
  SetAttentionMap(int organ, const Image & attention);
  /** The coarse network's probability of `organ` (a float32 image, any grid), for the coarse vote. */
  void
  SetCoarseProbabilityMap(int organ, const Image & probability);
  void
  SetCoarseWeight(double weight);
  double
  GetCoarseWeight() const;
  /** Each organ's coarse probability divided by its map's peak before the blend. */
  void
  SetCoarseVoteScaledToPeak(bool scaled);
  bool
  GetCoarseVoteScaledToPeak() const;
  void
  SetThreshold(double threshold);
  double
  GetThreshold() const;
  /** An organ's own threshold, replacing Threshold for it (organs then compete by their margin
   *  above their own threshold). */
  void
  SetOrganThreshold(int organ, double threshold);
  double
  GetOrganThreshold(int organ) const;
  void
  SetGaussianWeighting(bool on);
  bool
  GetGaussianWeighting() const;
  void
  SetPostProcessing(bool on);
  bool
  GetPostProcessing() const;
  void
  SetProbabilityMaps(bool on);
  bool
  GetProbabilityMaps() const;
  void
  Update();
  Image
  GetOutput() const;
  /** float32 image of `organ`'s averaged probability (ProbabilityMaps on, after Update). */
  Image
  GetProbabilityMap(int organ) const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_Impl;
};

/** itk::AGCLSegmentationFilter<Image<short,3>, Image<unsigned char,3>>. */
class SegmentationFilter
{
public:
  SegmentationFilter();
  ~SegmentationFilter();

  void
  SetInput(const Image & image);
  void
  SetModelFileName(const std::string & fileName);
  std::string
  GetModelFileName() const;
  /** A loaded model (shared; replaces the file name). */
  void
  SetModel(const Model & model);
  void
  SetDevice(const std::string & device);
  std::string
  GetDevice() const;
  void
  SetBatchSize(unsigned int size);
  unsigned int
  GetBatchSize() const;
  void
  SetSlabThickness(unsigned int slices);
  unsigned int
  GetSlabThickness() const;
  void
  SetPostProcessing(bool on);
  bool
  GetPostProcessing() const;
  /** The networks' precision: "float32" (default), "bfloat16" (autocast, CPU or CUDA) or
   *  "float16" (autocast, CUDA only). */
  void
  SetPrecision(const std::string & precision);
  std::string
  GetPrecision() const;
  /** Sampling, fusion and the label decision as the core's tensor functions on the device
   *  (always on CUDA; off by default on the CPU, where the ITK loops are faster). */
  void
  SetTensorPatchStages(bool on);
  bool
  GetTensorPatchStages() const;
  /** A Python callable called with the progress (0..1) at every ProgressEvent; None clears it.
   *  An exception raised by it aborts the filter and reaches the caller of Update. */
  void
  SetProgressCallback(PyObject * callable);

  void
  Update();
  Image
  GetOutput() const;
  /** JSON object: seconds per stage of the last Update. */
  std::string
  GetStageSecondsJson() const;
  /** The organ report of the last Update as JSON (AGCLSegmentationFilter::GetOrganReport). */
  std::string
  GetOrganReportJson() const;
  uint64_t
  GetNumberOfPatches() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_Impl;
};

/** itk::CoarseAttentionFilter<Image<short,3>, Image<unsigned char,3>>: the coarse organ label map
 *  (from a model's coarse network or a given coarse map) and one attention map per organ. The
 *  outputs are those of the last Update, taken from the filter (a later Update makes new ones). */
class CoarseAttentionFilter
{
public:
  CoarseAttentionFilter();
  ~CoarseAttentionFilter();
  void
  SetInput(const Image & image);
  void
  SetCoarseLabelMap(const Image & labels);
  void
  SetModelFileName(const std::string & fileName);
  void
  SetModel(const Model & model);
  void
  SetDevice(const std::string & device);
  std::string
  GetDevice() const;
  void
  SetMarginMM(double margin);
  double
  GetMarginMM() const;
  void
  SetOrganLabels(const std::vector<int> & labels);
  std::vector<int>
  GetOrganLabels() const;
  void
  Update();
  Image
  GetCoarseLabelOutput() const;
  Image
  GetAttentionMap(int label) const;
  /** float32 image on the model's coarse grid: the coarse network's probability of `label`
   *  (after Update with a model, not with a given coarse map). */
  Image
  GetCoarseProbabilityMap(int label) const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_Impl;
};

/** itk::AbdominalPhantomImageSource: (CT, labels) of one phantom subject. */
std::vector<Image>
Phantom(const std::vector<int64_t> & size, uint64_t seed, const std::string & modality);

/** itk::SegmentationMetrics of `prediction` against `reference` (same geometry, uint8) for the
 *  organs `labels`: a JSON list of {label, status, dice, iou, msd_mm, hd_mm, hd95_mm}. */
std::string
EvaluateJson(const Image & prediction, const Image & reference, const std::vector<int> & labels);

/** A model bundle's configuration (validated, with its weights), as JSON. */
std::string
ModelConfigJson(const std::string & fileName);

/** agcl::AGCLTrainer over itk::ManifestTrainingData: `configJson` the model configuration
 *  (ModelConfig keys; "" for the defaults), `optionsJson` the trainer options by their
 *  AGCLTrainerOptions names (e.g. {"mode": "agcl", "decoder_steps": 50}). Returns the model
 *  path. The progress callback (or None) gets a dict per logging step. After a run that ended
 *  with stage 2 the model is calibrated as `agcl train` does (itk::CalibrateTrainedModel). */
std::string
Train(const std::string & manifest,
      const std::string & outputDirectory,
      const std::string & configJson,
      const std::string & optionsJson,
      PyObject *          progress);

/** itk::CalibrateAGCLModelFile: the model `modelFile` with the statistics of its predictions on
 *  the `split` volumes of `manifest` written to `outFile`; returns the statistics as JSON. */
std::string
CalibrateModel(const std::string & modelFile,
               const std::string & manifest,
               const std::string & outFile,
               const std::string & split,
               const std::string & device);

/** A 2D model on one picture (issue 19; agcl::SegmentPicture, the core's picture stages):
 *  `buffer` holds the pixels as float32, C-contiguous, of `shape` (H, W, C) with C the model's
 *  image.channels (numpy's order of an RGB array); pixel units (the model's lengths are pixels).
 *  Returns the label map [H, W] uint8 (the organs' label values, 0 background). */
TensorView
SegmentPicture(const Model & model, const std::vector<int64_t> & shape, PyObject * buffer, const std::string & device);

// The single filters of pictures (issue 19; itkAGCLPictureFilters.h) over numpy arrays: pictures
// float32 (H, W, C) and label or attention maps uint8 (H, W), each given as (shape, buffer) with a
// C-contiguous buffer of exactly that size (copied); results as TensorViews of tensors made by
// each Update (a later Update leaves them alone). AGCLEncoderFilter and ASPPDecoderFilter
// (NetworkFilter) are the volumes'.

/** itk::PictureCoarseAttentionFilter: the coarse network's label map, one attention map per organ
 *  and the coarse probabilities [O, 1, h, w] (for PictureLabelFusionFilter's coarse vote). */
class PictureCoarseAttentionFilter
{
public:
  PictureCoarseAttentionFilter();
  ~PictureCoarseAttentionFilter();
  void
  SetInput(const std::vector<int64_t> & shape, PyObject * buffer);
  void
  SetModel(const Model & model);
  void
  SetDevice(const std::string & device);
  std::string
  GetDevice() const;
  void
  Update();
  TensorView
  GetCoarseLabelOutput() const;
  TensorView
  GetAttentionMap(int label) const;
  TensorView
  GetCoarseProbabilities() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_Impl;
};

/** itk::PictureQueryPatchSamplerFilter: query patches of a picture -> TensorData "image"
 *  [N, C + 1, P, P] (and in training mode with a label map "label" [N, 1, P, P]). */
class PictureQueryPatchSamplerFilter
{
public:
  PictureQueryPatchSamplerFilter();
  ~PictureQueryPatchSamplerFilter();
  void
  SetInput(const std::vector<int64_t> & shape, PyObject * buffer);
  void
  SetAttentionMap(int label, const std::vector<int64_t> & shape, PyObject * buffer);
  void
  SetLabelMap(const std::vector<int64_t> & shape, PyObject * buffer);
  void
  SetModel(const Model & model);
  void
  SetTraining(bool training);
  bool
  GetTraining() const;
  void
  SetPatchesPerOrgan(unsigned int count);
  unsigned int
  GetPatchesPerOrgan() const;
  void
  SetSeed(uint64_t seed);
  uint64_t
  GetSeed() const;
  void
  SetOverlap(double overlap);
  double
  GetOverlap() const;
  void
  SetModality(int modality);
  int
  GetModality() const;
  void
  Update();
  TensorData
  GetOutput() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_Impl;
};

/** itk::PictureLabelFusionFilter: the patches' "probability" -> label map uint8 [H, W] of a
 *  picture of `SetReferenceSize(H, W)`. */
class PictureLabelFusionFilter
{
public:
  PictureLabelFusionFilter();
  ~PictureLabelFusionFilter();
  void
  SetReferenceSize(int64_t height, int64_t width);
  void
  SetPatches(const TensorData & patches);
  void
  SetAttentionMap(int label, const std::vector<int64_t> & shape, PyObject * buffer);
  /** float32 [O, 1, h, w], as PictureCoarseAttentionFilter gives them. */
  void
  SetCoarseProbabilities(const std::vector<int64_t> & shape, PyObject * buffer);
  void
  SetModel(const Model & model);
  void
  SetGaussianWeighting(bool on);
  bool
  GetGaussianWeighting() const;
  void
  Update();
  TensorView
  GetOutput() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_Impl;
};

/** The module's version. */
std::string
Version();

} // namespace agcl::python

#endif
