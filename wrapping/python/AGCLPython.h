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

/** Reads any image ITK reads (NIfTI, NRRD, MetaImage, a DICOM series folder); 8-bit unsigned
 *  files become uint8, floating-point ones float32, other integers int16 (values outside the
 *  int16 range are an error, not wrapped). */
Image
ReadImage(const std::string & fileName);
/** Writes atomically (temporary file + rename). */
void
WriteImage(const Image & image, const std::string & fileName);

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
  uint64_t
  GetNumberOfPatches() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_Impl;
};

/** itk::CoarseAttentionFilter<Image<short,3>, Image<unsigned char,3>>: the coarse organ label map
 *  (from a model's coarse network or a given coarse map) and one attention map per organ. The
 *  outputs are the filter's own images (as in ITK: a later Update rewrites them). */
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
 *  path. The progress callback (or None) gets a dict per logging step. */
std::string
Train(const std::string & manifest,
      const std::string & outputDirectory,
      const std::string & configJson,
      const std::string & optionsJson,
      PyObject *          progress);

/** The module's version. */
std::string
Version();

} // namespace agcl::python

#endif
