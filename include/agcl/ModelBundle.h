/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_ModelBundle_h
#define agcl_ModelBundle_h

#include "agcl/AtomicFile.h"

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace torch::nn {
class Module;
}

namespace agcl {

/** Raised for any problem with a model file; the message names the file and what was wrong. */
class ModelBundleError : public std::runtime_error
{
public:
  using std::runtime_error::runtime_error;
};

/** The tensor dtypes a bundle stores, by their names in the file ("float32", "int64", ...). */
const std::map<std::string, c10::ScalarType> &
BundleDtypes();
/** The file's name of `type`; ModelBundleError when bundles cannot store it. */
std::string
BundleDtypeName(c10::ScalarType type);

/** Everything inference needs, in one versioned `*.agcl` file: a JSON configuration
 *  (architecture, patch size, spacing, window, organs, modalities, provenance: whatever the
 *  caller puts in `config`) and named tensors (the weights of the coarse network, encoder,
 *  decoder).
 *
 *  File format, version 1 (all integers little-endian):
 *    bytes 0-7    magic "AGCLMDL\0"
 *    bytes 8-11   uint32 format version (1)
 *    bytes 12-15  uint32 reserved (0)
 *    bytes 16-23  uint64 H, the size of the JSON header
 *    bytes 24..   the UTF-8 JSON header, H bytes:
 *                 {"format": "agcl-model", "version": 1, "config": {...},
 *                  "tensors": [{"name", "dtype", "shape", "offset", "nbytes"}, ...]}
 *    then zero padding to a multiple of 64 bytes, then the data section: each tensor's raw
 *    little-endian, C-contiguous bytes at `offset` (relative to the data section's start).
 *  dtypes: float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool.
 *
 *  This is deliberately NOT torch::save/torch::load: loading executes nothing from the file,
 *  and every size, offset and shape is checked against the file's length before use.
 *  Documentation/model-format.md has a 20-line numpy reader. */
class ModelBundle
{
public:
  static constexpr uint32_t kFormatVersion = 1;

  nlohmann::json config = nlohmann::json::object();

  /** Adds (or replaces) a tensor; it is copied to a contiguous CPU tensor. */
  void
  Add(const std::string & name, const at::Tensor & tensor);
  /** Adds every parameter and buffer of `module` as "prefix.name". */
  void
  AddModule(const std::string & prefix, const torch::nn::Module & module);

  bool
  Has(const std::string & name) const;
  /** The tensor `name`; ModelBundleError if absent. */
  const at::Tensor &
  Get(const std::string & name) const;
  const std::vector<std::pair<std::string, at::Tensor>> &
  Tensors() const
  {
    return m_Tensors;
  }
  /** The (name, tensor) pairs under "prefix.", with the prefix removed. */
  std::vector<std::pair<std::string, at::Tensor>>
  WithPrefix(const std::string & prefix) const;

  /** Copies "prefix.name" into every parameter and buffer of `module`; a missing entry, a
   *  shape or dtype other than the module's, or a non-finite floating-point value throws
   *  ModelBundleError naming the tensor. */
  void
  LoadInto(const std::string & prefix, torch::nn::Module & module) const;

  /** Writes the file atomically (agcl::WriteFileAtomically: a temporary file `path`.partial.<pid>.<n>,
   *  checked writes, fsync, close, rename, fsync of the folder): a failed save leaves nothing
   *  behind and a killed process at most the temporary file, never a half-written `path`.
   *  `hook` (fault injection in tests) is called at each WritePoint; an exception from it
   *  propagates and leaves the temporary file. Errors: ModelBundleError naming `path`. */
  void
  Save(const std::string & path, const WritePointHook & hook = {}) const;
  /** Reads a bundle written by Save. Refused with ModelBundleError naming the file, before
   *  anything large is allocated: a path that is not a regular file (a folder, FIFO, device),
   *  a file over kMaxFileBytes, a JSON header over kMaxHeaderBytes or nested deeper than
   *  kMaxJsonDepth, more than kMaxTensors tensors, and every inconsistency of the header with
   *  the file (offsets, sizes, dtypes, shapes). */
  static ModelBundle
  Load(const std::string & path);

  /** Limits of Load (documented in Documentation/model-format.md): ResNet-101 at width 64 with
   *  its decoder is ~0.2 GB and ~700 tensors. */
  static constexpr uint64_t kMaxFileBytes = uint64_t{ 8 } << 30;
  static constexpr uint64_t kMaxHeaderBytes = uint64_t{ 16 } << 20;
  static constexpr size_t   kMaxTensors = 100000;

private:
  std::vector<std::pair<std::string, at::Tensor>> m_Tensors;
};

} // namespace agcl

#endif
