/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkManifestTrainingData.h"

#include "agcl/AGCLModel.h"
#include "itkAGCLModelObject.h"
#include "itkCoarseAttentionFilter.h"
#include "itkReadPicture.h"
#include "itkReadVolume.h"
#include "itkImageToTensor.h"
#include "itkQueryPatchSamplerFilter.h"

#include <ATen/ATen.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>

namespace itk {
namespace {

// PASCAL VOC's void label: ignored by the losses, attended by no organ.
constexpr int kVoidLabel = 255;

/** The classes of a label map (label values, any integer tensor): 0 background, i = organ i-1 of
 *  `config`, other values background; with `voidIgnored`, kVoidLabel -> -1 (ignored by the losses). */
at::Tensor
ClassesOfLabels(const at::Tensor & labels, const agcl::ModelConfig & config, bool voidIgnored)
{
  std::array<int64_t, 256> classOf{};
  if (voidIgnored)
    classOf[kVoidLabel] = -1;
  for (size_t o = 0; o < config.organs.size(); ++o)
    if (config.organs[o].label >= 0 && config.organs[o].label < 256)
      classOf[static_cast<size_t>(config.organs[o].label)] = static_cast<int64_t>(o) + 1;
  const at::Tensor table = at::tensor(std::vector<int64_t>(classOf.begin(), classOf.end()), at::kLong);
  return table.index_select(0, labels.to(at::kLong).flatten()).view(labels.sizes());
}

// itk::ReadVolume, its failures as std::invalid_argument (the trainer's "bad input" exception).
template <typename TImage>
typename TImage::Pointer
Read(const std::string & file, const std::string & what)
{
  try
  {
    return ReadVolume<TImage>(file, what);
  }
  catch (const ExceptionObject & e)
  {
    throw std::invalid_argument(e.GetDescription());
  }
}

} // namespace

ManifestTrainingData::ManifestTrainingData(const std::string & manifest, const agcl::ModelConfig & config)
  : m_Config(config)
{
  m_Rows = agcl::ReadManifest(manifest, { "subject", "image", "modality", "split" }, "all", { "label" });
  for (size_t i = 0; i < m_Rows.size(); ++i)
  {
    const agcl::ManifestRow & row = m_Rows[i];
    const std::string         where = "manifest '" + manifest + "', subject '" + row.subject + "': ";
    const auto                modality = std::find(config.modalities.begin(), config.modalities.end(), row.modality);
    if (modality == config.modalities.end())
    {
      std::string known;
      for (const auto & m : config.modalities)
        known += (known.empty() ? "" : ", ") + m;
      throw agcl::ManifestError(where + "modality '" + row.modality + "' is not one of the config's (" + known + ")");
    }
    if (row.split != "train" && row.split != "val" && row.split != "test")
      throw agcl::ManifestError(where + "split '" + row.split + "': expected train, val or test");
    if (!std::filesystem::exists(row.image))
      throw agcl::ManifestError(where + "image '" + row.image + "': no such file");
    if (row.label.empty() && row.split == "val")
      throw agcl::ManifestError(where + "a validation subject needs a label map");
    if (!row.label.empty() && !std::filesystem::exists(row.label))
      throw agcl::ManifestError(where + "label '" + row.label + "': no such file");
    if (config.image_dimensions == 2) // a 2D model: every image a picture with its channels (headers only)
    {
      try
      {
        ReadPictureHeader(row.image, "image", static_cast<unsigned int>(config.image_channels));
      }
      catch (const ExceptionObject & e)
      {
        throw agcl::ManifestError(where + e.GetDescription());
      }
    }
    m_Subjects.push_back({ row.subject, modality - config.modalities.begin(), row.split, !row.label.empty() });
  }
  if (m_Rows.empty())
    throw agcl::ManifestError("manifest '" + manifest + "': no subjects");
}

std::vector<agcl::TrainingSubject>
ManifestTrainingData::Subjects() const
{
  return m_Subjects;
}

const ManifestTrainingData::CTImageType *
ManifestTrainingData::GetImage(size_t index)
{
  auto & image = m_Images[index];
  if (!image)
    image = Read<CTImageType>(m_Rows.at(index).image, "image of subject '" + m_Rows[index].subject + "'");
  return image;
}

const ManifestTrainingData::LabelImageType *
ManifestTrainingData::GetLabels(size_t index)
{
  auto & labels = m_Labels[index];
  if (labels)
    return labels;
  const agcl::ManifestRow & row = m_Rows.at(index);
  if (row.label.empty())
    throw std::invalid_argument("subject '" + row.subject + "' has no label map");
  labels = Read<LabelImageType>(row.label, "label map of subject '" + row.subject + "'");
  const CTImageType * image = GetImage(index);
  bool same = labels->GetLargestPossibleRegion().GetSize() == image->GetLargestPossibleRegion().GetSize();
  for (unsigned int d = 0; d < 3 && same; ++d)
  {
    const double tolerance = 1e-3 * image->GetSpacing()[d];
    same = std::abs(labels->GetSpacing()[d] - image->GetSpacing()[d]) <= tolerance &&
           std::abs(labels->GetOrigin()[d] - image->GetOrigin()[d]) <= tolerance;
  }
  if (!same)
    throw std::invalid_argument("subject '" + row.subject + "': label map '" + row.label +
                                "' does not have the grid (size, spacing, origin) of its image '" + row.image + "'");
  std::set<int> organs;
  for (const auto & organ : m_Config.organs)
    organs.insert(static_cast<int>(organ.label));
  std::set<int>         unknown;
  const unsigned char * buffer = labels->GetBufferPointer();
  for (SizeValueType i = 0, n = labels->GetBufferedRegion().GetNumberOfPixels(); i < n; ++i)
    if (buffer[i] != 0 && organs.count(buffer[i]) == 0)
      unknown.insert(buffer[i]);
  ReportUnknownLabels(unknown, row.label);
  return labels;
}

void
ManifestTrainingData::ReportUnknownLabels(const std::set<int> & unknown, const std::string & file)
{
  std::string fresh;
  for (int value : unknown)
    if (m_Ignored.insert(value).second)
      fresh += (fresh.empty() ? "" : ", ") + std::to_string(value);
  if (!fresh.empty())
    std::cerr << "agcl: warning: label value(s) " << fresh << " in '" << file
              << "' are not organs of the model's config: treated as background" << std::endl;
}

void
ManifestTrainingData::SetPictureCacheLimit(size_t bytes)
{
  m_PictureCacheLimit = bytes;
  TrimPictureCache(std::numeric_limits<size_t>::max());
}

namespace {
size_t
BytesOf(const at::Tensor & tensor)
{
  return tensor.defined() ? static_cast<size_t>(tensor.numel()) * tensor.element_size() : 0;
}
} // namespace

void
ManifestTrainingData::TrimPictureCache(size_t keep)
{
  for (auto it = m_PictureUse.end(); m_PictureBytes > m_PictureCacheLimit && it != m_PictureUse.begin();)
  {
    --it;
    if (*it == keep)
      continue;
    const CachedPicture & entry = m_Pictures.at(*it);
    m_PictureBytes -= BytesOf(entry.picture.pixels) + BytesOf(entry.labels);
    m_Pictures.erase(*it);
    it = m_PictureUse.erase(it);
  }
}

ManifestTrainingData::CachedPicture &
ManifestTrainingData::PictureEntry(size_t index)
{
  auto it = m_Pictures.find(index);
  if (it != m_Pictures.end())
  {
    m_PictureUse.splice(m_PictureUse.begin(), m_PictureUse, it->second.use);
    return it->second;
  }
  const agcl::ManifestRow & row = m_Rows.at(index);
  CachedPicture             entry;
  try
  {
    entry.picture = ReadPicture(row.image,
                                "picture of subject '" + row.subject + "'",
                                static_cast<unsigned int>(m_Config.image_channels))
                      .picture;
  }
  catch (const ExceptionObject & e)
  {
    throw std::invalid_argument(e.GetDescription());
  }
  ++m_PicturesRead;
  m_PictureBytes += BytesOf(entry.picture.pixels);
  m_PictureUse.push_front(index);
  entry.use = m_PictureUse.begin();
  CachedPicture & stored = m_Pictures.emplace(index, std::move(entry)).first->second;
  TrimPictureCache(index);
  return stored;
}

agcl::Picture
ManifestTrainingData::GetPicture(size_t index)
{
  return PictureEntry(index).picture; // shares the pixels: a later eviction leaves the caller's copy alone
}

at::Tensor
ManifestTrainingData::GetPictureLabels(size_t index)
{
  CachedPicture & entry = PictureEntry(index);
  if (entry.labels.defined())
    return entry.labels;
  const agcl::ManifestRow & row = m_Rows.at(index);
  if (row.label.empty())
    throw std::invalid_argument("subject '" + row.subject + "' has no label map");
  const auto            labels = Read<Image<unsigned char, 2>>(row.label, "label map of subject '" + row.subject + "'");
  const auto            size = labels->GetLargestPossibleRegion().GetSize();
  const agcl::Picture & picture = entry.picture;
  if (static_cast<int64_t>(size[0]) != picture.pixels.size(2) ||
      static_cast<int64_t>(size[1]) != picture.pixels.size(1))
    throw std::invalid_argument("subject '" + row.subject + "': label map '" + row.label + "' is " +
                                std::to_string(size[0]) + " x " + std::to_string(size[1]) + " pixels, its picture '" +
                                row.image + "' " + std::to_string(picture.pixels.size(2)) + " x " +
                                std::to_string(picture.pixels.size(1)));
  const int64_t H = size[1], W = size[0];
  at::Tensor    values = at::empty({ H, W }, at::kByte);
  std::memcpy(values.data_ptr<uint8_t>(), labels->GetBufferPointer(), static_cast<size_t>(H * W));
  std::set<int> organs;
  for (const auto & organ : m_Config.organs)
    organs.insert(static_cast<int>(organ.label));
  const at::Tensor present = std::get<0>(at::_unique(values));
  std::set<int>    unknown;
  for (int64_t i = 0; i < present.numel(); ++i)
  {
    const int v = present[i].item<int>();
    if (v != 0 && v != kVoidLabel && organs.count(v) == 0)
      unknown.insert(v);
  }
  ReportUnknownLabels(unknown, row.label);
  entry.labels = values;
  m_PictureBytes += BytesOf(values);
  TrimPictureCache(index);
  return values;
}

at::Tensor
ManifestTrainingData::GetPictureClasses(size_t index)
{
  return ClassesOfLabels(GetPictureLabels(index), m_Config, true);
}

agcl::PatchSet
ManifestTrainingData::PicturePatches(size_t                index,
                                     agcl::AttentionSource source,
                                     agcl::AGCLModel &     model,
                                     const c10::Device &   device,
                                     int64_t               patchesPerOrgan,
                                     uint64_t              seed)
{
  const agcl::ModelConfig & config = model.Config();
  const agcl::Picture       picture = GetPicture(index);
  const bool                labelled = m_Subjects[index].labelled;
  const int64_t             O = static_cast<int64_t>(config.organs.size());
  at::Tensor                attention;
  if (source == agcl::AttentionSource::Truth)
  {
    if (!labelled)
      throw std::invalid_argument("subject '" + m_Subjects[index].name +
                                  "': attention from the truth needs a label map");
    attention = agcl::AttentionOfClasses(GetPictureClasses(index), O, picture.spacing, config.margin_mm);
  }
  else
    attention = agcl::CoarsePicture(model, picture, device).attention;
  const auto     frames = agcl::PicturePatchFrames(attention, picture.spacing, config, patchesPerOrgan, seed);
  agcl::PatchSet patches;
  if (frames.empty())
    return patches;
  patches.image = agcl::SamplePicturePatches(picture, attention, frames, config);
  const int64_t n = patches.image.size(0), P = config.patch_size;
  if (labelled)
  {
    std::vector<int64_t> organLabels;
    for (const auto & organ : config.organs)
      organLabels.push_back(organ.label);
    patches.mask = agcl::SamplePictureMasks(GetPictureLabels(index), frames, P, organLabels, kVoidLabel);
  }
  else
    patches.mask = at::zeros({ n, P, P }, at::kLong);
  std::vector<int64_t> organ;
  for (const auto & frame : frames)
    organ.push_back(frame.organ);
  patches.organ = at::tensor(organ, at::kLong);
  patches.modality = at::full({ n }, m_Subjects[index].modality, at::kLong);
  return patches;
}

agcl::CoarseSample
ManifestTrainingData::Coarse(size_t index, const agcl::ModelConfig & config)
{
  if (config.image_dimensions == 2)
  {
    const agcl::Picture picture = GetPicture(index);
    // Classes on the coarse grid by nearest neighbour; void stays -1 (ignored by the losses).
    return { agcl::PictureOnCoarseGrid(picture, config),
             agcl::LabelsOnCoarseGrid(GetPictureClasses(index), picture.spacing, config) };
  }
  using Attention = CoarseAttentionFilter<CTImageType, LabelImageType>;
  const auto coarse = Attention::ResampleToCoarseGrid(GetImage(index), config);
  const auto labels = Attention::ResampleLabels(GetLabels(index), coarse, coarse->GetLargestPossibleRegion());
  return { ImageToTensor<Attention::CoarseImageType>::Copy(coarse),
           ClassesOfLabels(ImageToTensor<LabelImageType>::Copy(labels), config, false) };
}

agcl::PatchSet
ManifestTrainingData::Patches(size_t                index,
                              agcl::AttentionSource source,
                              agcl::AGCLModel &     model,
                              const c10::Device &   device,
                              int64_t               patchesPerOrgan,
                              uint64_t              seed)
{
  using Attention = CoarseAttentionFilter<CTImageType, LabelImageType>;
  using Sampler = QueryPatchSamplerFilter<CTImageType, LabelImageType>;
  const agcl::ModelConfig & config = model.Config();
  if (config.image_dimensions == 2)
    return PicturePatches(index, source, model, device, patchesPerOrgan, seed);
  const CTImageType *    image = GetImage(index);
  const bool             labelled = m_Subjects[index].labelled;
  const LabelImageType * labels = labelled ? GetLabels(index) : nullptr;

  std::vector<unsigned char> organLabels;
  for (const auto & organ : config.organs)
    organLabels.push_back(static_cast<unsigned char>(organ.label));
  auto attention = Attention::New();
  attention->SetInput(image);
  AGCLModelObject::Pointer modelObject;
  if (source == agcl::AttentionSource::Truth)
  {
    if (!labels)
      throw std::invalid_argument("subject '" + m_Subjects[index].name +
                                  "': attention from the truth needs a label map");
    attention->SetCoarseLabelMap(labels);
  }
  else
  {
    modelObject = AGCLModelObject::New();
    // Not owned: the trainer's model outlives this call.
    modelObject->SetModel(std::shared_ptr<agcl::AGCLModel>(std::shared_ptr<agcl::AGCLModel>(), &model));
    attention->SetModel(modelObject);
    attention->SetDevice(device.str());
  }
  attention->SetOrganLabels(organLabels);
  attention->SetMarginMM(config.margin_mm);
  attention->Update();

  auto sampler = Sampler::New();
  sampler->SetInput(image);
  for (unsigned char organ : organLabels)
    sampler->SetAttentionMap(organ, attention->GetAttentionMap(organ));
  if (labels)
    sampler->SetLabelMap(labels);
  sampler->SetMode(Sampler::ModeEnum::Training);
  sampler->SetPatchSize(static_cast<unsigned int>(config.patch_size));
  sampler->SetPatchSpacingMM(config.patch_spacing_mm);
  sampler->SetPatchesPerOrgan(static_cast<unsigned int>(patchesPerOrgan));
  sampler->SetSeed(seed);
  sampler->SetWindowLow(config.window_low);
  sampler->SetWindowHigh(config.window_high);
  sampler->SetModality(static_cast<int>(m_Subjects[index].modality));
  sampler->Update();

  const TensorDataObject * output = sampler->GetOutput();
  agcl::PatchSet           patches;
  const int64_t            n = static_cast<int64_t>(output->GetNumberOfItems());
  if (n == 0)
    return patches;
  patches.image = output->GetTensor("image").to(at::kCPU, at::kFloat);
  const int64_t P = patches.image.size(2);
  patches.mask =
    labels ? output->GetTensor("label").to(at::kCPU, at::kLong).view({ n, P, P }) : at::zeros({ n, P, P }, at::kLong);
  std::vector<int64_t> organ, modality;
  for (const auto & item : output->GetMetadata())
  {
    const auto it = std::find(organLabels.begin(), organLabels.end(), static_cast<unsigned char>(item.organ));
    organ.push_back(it - organLabels.begin());
    modality.push_back(item.modality);
  }
  patches.organ = at::tensor(organ, at::kLong);
  patches.modality = at::tensor(modality, at::kLong);
  return patches;
}

} // namespace itk
