/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/ModelBundle.h"

#include "agcl/AtomicFile.h"
#include "agcl/JsonInput.h"

#include <torch/torch.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>

namespace agcl {

namespace {
constexpr char     kMagic[8] = { 'A', 'G', 'C', 'L', 'M', 'D', 'L', '\0' };
constexpr uint64_t kPrefixSize = 24;
constexpr uint64_t kAlignment = 64;

bool
LittleEndianHost()
{
  const uint16_t probe = 1;
  unsigned char  first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

void
PutU32(std::string & out, uint32_t v)
{
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void
PutU64(std::string & out, uint64_t v)
{
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
uint64_t
GetLE(const std::string & in, size_t at, int bytes)
{
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return v;
}
} // namespace

const std::map<std::string, c10::ScalarType> &
BundleDtypes()
{
  static const std::map<std::string, c10::ScalarType> dtypes = {
    { "float32", c10::ScalarType::Float }, { "float64", c10::ScalarType::Double },
    { "float16", c10::ScalarType::Half },  { "bfloat16", c10::ScalarType::BFloat16 },
    { "int64", c10::ScalarType::Long },    { "int32", c10::ScalarType::Int },
    { "int16", c10::ScalarType::Short },   { "int8", c10::ScalarType::Char },
    { "uint8", c10::ScalarType::Byte },    { "bool", c10::ScalarType::Bool },
  };
  return dtypes;
}

std::string
BundleDtypeName(c10::ScalarType type)
{
  for (const auto & [name, t] : BundleDtypes())
    if (t == type)
      return name;
  throw ModelBundleError(std::string("model bundle: tensors of dtype ") + c10::toString(type) + " cannot be stored");
}

void
ModelBundle::Add(const std::string & name, const at::Tensor & tensor)
{
  if (name.empty() || !tensor.defined())
    throw ModelBundleError("model bundle: a tensor needs a name and a value");
  BundleDtypeName(tensor.scalar_type()); // refuses unsupported dtypes now, not at Save
  at::Tensor stored = tensor.detach().to(torch::kCPU).contiguous().clone();
  for (auto & entry : m_Tensors)
    if (entry.first == name)
    {
      entry.second = stored;
      return;
    }
  m_Tensors.emplace_back(name, stored);
}

void
ModelBundle::AddModule(const std::string & prefix, const torch::nn::Module & module)
{
  for (const auto & p : module.named_parameters(true))
    Add(prefix + "." + p.key(), p.value());
  for (const auto & b : module.named_buffers(true))
    Add(prefix + "." + b.key(), b.value());
}

bool
ModelBundle::Has(const std::string & name) const
{
  for (const auto & entry : m_Tensors)
    if (entry.first == name)
      return true;
  return false;
}

const at::Tensor &
ModelBundle::Get(const std::string & name) const
{
  for (const auto & entry : m_Tensors)
    if (entry.first == name)
      return entry.second;
  throw ModelBundleError("model bundle: no tensor '" + name + "'");
}

std::vector<std::pair<std::string, at::Tensor>>
ModelBundle::WithPrefix(const std::string & prefix) const
{
  std::vector<std::pair<std::string, at::Tensor>> out;
  const std::string                               head = prefix + ".";
  for (const auto & entry : m_Tensors)
    if (entry.first.rfind(head, 0) == 0)
      out.emplace_back(entry.first.substr(head.size()), entry.second);
  return out;
}

void
ModelBundle::LoadInto(const std::string & prefix, torch::nn::Module & module) const
{
  torch::NoGradGuard noGrad;
  auto               assign = [&](const std::string & name, torch::Tensor & target) {
    const std::string  full = prefix + "." + name;
    const at::Tensor & value = Get(full);
    if (value.sizes() != target.sizes())
    {
      std::ostringstream os;
      os << "model bundle: tensor '" << full << "' has shape " << value.sizes() << "; the model expects "
         << target.sizes();
      throw ModelBundleError(os.str());
    }
    // copy_ would convert silently (int64 counts into float weights, float into a counter).
    if (value.scalar_type() != target.scalar_type())
      throw ModelBundleError("model bundle: tensor '" + full + "' has dtype " + c10::toString(value.scalar_type()) +
                             "; the model expects " + c10::toString(target.scalar_type()));
    if (value.is_floating_point() && value.numel() > 0 && !torch::isfinite(value).all().item<bool>())
      throw ModelBundleError("model bundle: tensor '" + full + "' holds NaN or infinite values");
    target.copy_(value);
  };
  for (auto & p : module.named_parameters(true))
    assign(p.key(), p.value());
  for (auto & b : module.named_buffers(true))
    assign(b.key(), b.value());
}

void
ModelBundle::Save(const std::string & path, const WritePointHook & hook) const
{
  if (!LittleEndianHost())
    throw ModelBundleError("model bundle '" + path + "': big-endian hosts are not supported");
  nlohmann::json header;
  header["format"] = "agcl-model";
  header["version"] = kFormatVersion;
  header["config"] = config;
  header["tensors"] = nlohmann::json::array();
  uint64_t offset = 0;
  for (const auto & [name, tensor] : m_Tensors)
  {
    const uint64_t nbytes = static_cast<uint64_t>(tensor.numel()) * tensor.element_size();
    header["tensors"].push_back({ { "name", name },
                                  { "dtype", BundleDtypeName(tensor.scalar_type()) },
                                  { "shape", tensor.sizes().vec() },
                                  { "offset", offset },
                                  { "nbytes", nbytes } });
    offset += nbytes;
  }
  const std::string json = header.dump();
  std::string       prefix(kMagic, sizeof(kMagic));
  PutU32(prefix, kFormatVersion);
  PutU32(prefix, 0);
  PutU64(prefix, json.size());
  const uint64_t dataStart = (kPrefixSize + json.size() + kAlignment - 1) / kAlignment * kAlignment;

  bool inHook = false; // an exception from the hook (a simulated crash) passes unchanged
  try
  {
    WriteFileAtomically(
      path,
      [&](const auto & write) {
        write(prefix.data(), prefix.size());
        write(json.data(), json.size());
        const std::string padding(dataStart - kPrefixSize - json.size(), '\0');
        write(padding.data(), padding.size());
        for (const auto & entry : m_Tensors)
        {
          const at::Tensor & t = entry.second;
          write(t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
        }
      },
      hook ? WritePointHook([&](WritePoint point, const std::filesystem::path & temporary) {
        inHook = true;
        hook(point, temporary);
        inHook = false;
      })
           : WritePointHook());
  }
  catch (const std::runtime_error & e)
  {
    if (inHook || dynamic_cast<const ModelBundleError *>(&e) != nullptr)
      throw;
    throw ModelBundleError("model bundle: " + std::string(e.what()));
  }
}

ModelBundle
ModelBundle::Load(const std::string & path)
{
  const std::string where = "model bundle '" + path + "': ";
  if (!LittleEndianHost())
    throw ModelBundleError(where + "big-endian hosts are not supported");
  std::string bytes;
  try
  {
    bytes = ReadRegularFile(path, kMaxFileBytes);
  }
  catch (const std::invalid_argument & e)
  {
    throw ModelBundleError(where + e.what());
  }
  const uint64_t size = bytes.size();
  if (size < kPrefixSize || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0)
    throw ModelBundleError(where + "not an AGCL model file (expected the magic 'AGCLMDL')");
  const uint64_t version = GetLE(bytes, 8, 4);
  if (version != kFormatVersion)
    throw ModelBundleError(where + "format version " + std::to_string(version) + " is unknown; this build reads " +
                           std::to_string(kFormatVersion));
  const uint64_t headerSize = GetLE(bytes, 16, 8);
  if (headerSize > size - kPrefixSize)
    throw ModelBundleError(where + "truncated: the header claims " + std::to_string(headerSize) +
                           " bytes, the file has " + std::to_string(size - kPrefixSize) + " after the prefix");
  if (headerSize > kMaxHeaderBytes)
    throw ModelBundleError(where + "the header claims " + std::to_string(headerSize) + " bytes; at most " +
                           std::to_string(kMaxHeaderBytes) + " are read");
  const std::string_view headerText(bytes.data() + kPrefixSize, static_cast<size_t>(headerSize));
  if (JsonNestingDepth(headerText) > kMaxJsonDepth)
    throw ModelBundleError(where + "corrupt JSON header (nested deeper than " + std::to_string(kMaxJsonDepth) +
                           " levels)");
  nlohmann::json header;
  try
  {
    header = nlohmann::json::parse(headerText.begin(), headerText.end());
  }
  catch (const nlohmann::json::exception & e)
  {
    throw ModelBundleError(where + "corrupt JSON header (" + e.what() + ")");
  }
  const uint64_t dataStart = (kPrefixSize + headerSize + kAlignment - 1) / kAlignment * kAlignment;
  const uint64_t dataSize = size >= dataStart ? size - dataStart : 0;

  ModelBundle bundle;
  try
  {
    if (!header.is_object() || header.value("format", std::string()) != "agcl-model" ||
        header.value("version", uint64_t{ 0 }) != kFormatVersion || !header.contains("config") ||
        !header["config"].is_object() || !header.contains("tensors") || !header["tensors"].is_array())
      throw ModelBundleError(where +
                             "the header is not that of an AGCL model (expected format, version, config, tensors)");
    if (header["tensors"].size() > kMaxTensors)
      throw ModelBundleError(where + "the header lists " + std::to_string(header["tensors"].size()) +
                             " tensors; at most " + std::to_string(kMaxTensors) + " are read");
    bundle.config = header["config"];
    for (const auto & entry : header["tensors"])
    {
      const std::string name = entry.at("name").get<std::string>();
      const std::string dtype = entry.at("dtype").get<std::string>();
      const auto        found = BundleDtypes().find(dtype);
      if (found == BundleDtypes().end())
        throw ModelBundleError(where + "tensor '" + name + "' has unknown dtype '" + dtype + "'");
      std::vector<int64_t> shape;
      uint64_t             numel = 1;
      for (const auto & d : entry.at("shape"))
      {
        const int64_t n = d.get<int64_t>();
        if (n < 0 || (n > 0 && numel > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(n)))
          throw ModelBundleError(where + "tensor '" + name + "' has an invalid shape");
        numel *= static_cast<uint64_t>(n);
        shape.push_back(n);
      }
      const uint64_t element = c10::elementSize(found->second);
      const uint64_t offset = entry.at("offset").get<uint64_t>();
      const uint64_t nbytes = entry.at("nbytes").get<uint64_t>();
      if (numel > std::numeric_limits<uint64_t>::max() / element || nbytes != numel * element)
        throw ModelBundleError(where + "tensor '" + name + "': nbytes does not match its shape and dtype");
      if (offset > dataSize || nbytes > dataSize - offset)
        throw ModelBundleError(where + "truncated: tensor '" + name + "' lies beyond the end of the file");
      if (bundle.Has(name))
        throw ModelBundleError(where + "tensor '" + name + "' appears twice");
      at::Tensor tensor = torch::empty(shape, torch::TensorOptions().dtype(found->second));
      if (nbytes > 0)
        std::memcpy(tensor.data_ptr(), bytes.data() + dataStart + offset, nbytes);
      bundle.m_Tensors.emplace_back(name, tensor);
    }
  }
  catch (const nlohmann::json::exception & e)
  {
    throw ModelBundleError(where + "malformed header (" + e.what() + ")");
  }
  return bundle;
}

} // namespace agcl
