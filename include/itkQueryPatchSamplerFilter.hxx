/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkQueryPatchSamplerFilter_hxx
#define itkQueryPatchSamplerFilter_hxx

#include "itkQueryPatchSamplerFilter.h"
#include "itkVerifyImageGeometry.h"

#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkLabelBoundingBoxes.h"
#include "itkLinearInterpolateImageFunction.h"
#include "itkVerifyFiniteImage.h"

#include <ATen/ops/empty.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace itk {

template <typename TInputImage, typename TLabelImage>
QueryPatchSamplerFilter<TInputImage, TLabelImage>::QueryPatchSamplerFilter()
{
  this->SetNumberOfRequiredInputs(1);
  this->AddOptionalInputName("LabelMap");
  this->SetNumberOfRequiredOutputs(1);
  this->SetNthOutput(0, this->MakeOutput(0));
  // The output keeps its patches until GenerateData, which reuses their buffer when nothing else
  // holds it (and otherwise drops them before sampling anew).
  this->ReleaseDataBeforeUpdateFlagOff();
}

template <typename TInputImage, typename TLabelImage>
ProcessObject::DataObjectPointer
QueryPatchSamplerFilter<TInputImage, TLabelImage>::MakeOutput(DataObjectPointerArraySizeType)
{
  return TensorDataObject::New().GetPointer();
}

template <typename TInputImage, typename TLabelImage>
void
QueryPatchSamplerFilter<TInputImage, TLabelImage>::SetInput(const InputImageType * image)
{
  this->SetNthInput(0, const_cast<InputImageType *>(image));
}

template <typename TInputImage, typename TLabelImage>
auto
QueryPatchSamplerFilter<TInputImage, TLabelImage>::GetInput() const -> const InputImageType *
{
  return dynamic_cast<const InputImageType *>(this->ProcessObject::GetInput(0));
}

template <typename TInputImage, typename TLabelImage>
void
QueryPatchSamplerFilter<TInputImage, TLabelImage>::SetAttentionMap(LabelType organ, const LabelImageType * attention)
{
  const std::string name = "Attention" + std::to_string(static_cast<long long>(organ));
  if (attention == nullptr) // as ITK's SetInput(nullptr): the organ's map is removed
  {
    m_Attention.erase(organ);
    this->RemoveInput(name);
  }
  else
  {
    this->AddOptionalInputName(name);
    this->ProcessObject::SetInput(name, const_cast<LabelImageType *>(attention));
    m_Attention[organ] = attention;
  }
  this->Modified();
}

template <typename TInputImage, typename TLabelImage>
void
QueryPatchSamplerFilter<TInputImage, TLabelImage>::SetLabelMap(const LabelImageType * labels)
{
  this->ProcessObject::SetInput("LabelMap", const_cast<LabelImageType *>(labels));
}

template <typename TInputImage, typename TLabelImage>
TensorDataObject *
QueryPatchSamplerFilter<TInputImage, TLabelImage>::GetOutput()
{
  return dynamic_cast<TensorDataObject *>(this->ProcessObject::GetOutput(0));
}

template <typename TInputImage, typename TLabelImage>
unsigned int
QueryPatchSamplerFilter<TInputImage, TLabelImage>::AxialAxis(const typename InputImageType::DirectionType & direction)
{
  unsigned int axial = 0;
  for (unsigned int d = 1; d < 3; ++d)
  {
    if (std::abs(direction(2, d)) > std::abs(direction(2, axial)))
    {
      axial = d;
    }
  }
  return axial;
}

template <typename TInputImage, typename TLabelImage>
void
QueryPatchSamplerFilter<TInputImage, TLabelImage>::VerifyPreconditions() ITKv5_CONST
{
  Superclass::VerifyPreconditions();
  if (m_PatchSize == 0 || m_PatchSize % 16 != 0 || m_PatchSize > 1024)
  {
    itkExceptionMacro(<< "PatchSize " << m_PatchSize
                      << ": expected a multiple of 16 up to 1024 (the encoder's stride)");
  }
  if (!(m_WindowLow < m_WindowHigh))
  {
    itkExceptionMacro(<< "window " << m_WindowLow << ".." << m_WindowHigh << ": expected WindowLow < WindowHigh");
  }
  if (!(m_Overlap >= 0.0 && m_Overlap <= 0.9))
  {
    itkExceptionMacro(<< "Overlap " << m_Overlap << ": expected 0..0.9");
  }
  if (!(m_PatchSpacingMM >= 0.0) || !std::isfinite(m_PatchSpacingMM))
  {
    itkExceptionMacro(<< "PatchSpacingMM " << m_PatchSpacingMM << ": expected >= 0 (0 = the image's spacing)");
  }
  if (m_Attention.empty())
  {
    itkExceptionMacro(<< "no attention maps: call SetAttentionMap(organ, map) for each organ");
  }
}

// Geometry checks need the inputs' output information, which the pipeline has only now
// (VerifyPreconditions runs before the upstream filters have told their sizes).
template <typename TInputImage, typename TLabelImage>
void
QueryPatchSamplerFilter<TInputImage, TLabelImage>::VerifyInputInformation() ITKv5_CONST
{
  Superclass::VerifyInputInformation();
  const auto * image = this->GetInput();
  if (image->GetLargestPossibleRegion().GetNumberOfPixels() == 0)
  {
    itkExceptionMacro(<< "the input image is empty");
  }
  auto sameGeometry = [image](const ImageBase<ImageDimension> * other) {
    const double tolerance = 1e-6 * image->GetSpacing()[0];
    return other->GetLargestPossibleRegion() == image->GetLargestPossibleRegion() &&
           other->GetSpacing().GetVnlVector().is_equal(image->GetSpacing().GetVnlVector(), tolerance) &&
           other->GetOrigin().GetVnlVector().is_equal(image->GetOrigin().GetVnlVector(), tolerance) &&
           other->GetDirection().GetVnlMatrix().is_equal(image->GetDirection().GetVnlMatrix(), 1e-6);
  };
  for (const auto & entry : m_Attention)
  {
    if (!sameGeometry(entry.second))
    {
      itkExceptionMacro(<< "the attention map of organ " << static_cast<double>(entry.first)
                        << " does not have the input image's geometry (size, spacing, origin, direction)");
    }
  }
  if (const auto * labels = dynamic_cast<const LabelImageType *>(this->ProcessObject::GetInput("LabelMap")))
  {
    if (!sameGeometry(labels))
    {
      itkExceptionMacro(<< "the label map does not have the input image's geometry");
    }
  }
}

template <typename TInputImage, typename TLabelImage>
auto
QueryPatchSamplerFilter<TInputImage, TLabelImage>::PlanPatches() const -> PatchPlan
{
  this->VerifyPreconditions();
  const InputImageType * image = this->GetInput();
  if (image == nullptr)
  {
    itkExceptionMacro(<< "no input image");
  }
  this->VerifyInputInformation();
  const auto region = image->GetLargestPossibleRegion();
  const auto direction = image->GetDirection();
  const auto spacing = image->GetSpacing();

  VerifyFiniteImage(image, "QueryPatchSamplerFilter: the input image");
  VerifyImageGeometry(image, "QueryPatchSamplerFilter: the input image");
  const unsigned int axial = AxialAxis(direction);
  const unsigned int a0 = axial == 0 ? 1 : 0, a1 = axial == 2 ? 1 : 2;
  const double       s = m_PatchSpacingMM > 0 ? m_PatchSpacingMM : std::min(spacing[a0], spacing[a1]);
  const int64_t      P = m_PatchSize;

  struct Centre
  {
    LabelType                          organ;
    typename InputImageType::PointType point;
  };
  std::vector<Centre> centres;
  using IndexType = typename LabelImageType::IndexType;
  using PointType = typename InputImageType::PointType;

  for (const auto & [organ, attention] : m_Attention)
  {
    if (m_Mode == ModeEnum::Training)
    {
      std::vector<IndexType> voxels;
      for (ImageRegionConstIteratorWithIndex<LabelImageType> it(attention, region); !it.IsAtEnd(); ++it)
      {
        if (it.Get() != LabelType{})
        {
          voxels.push_back(it.GetIndex());
        }
      }
      if (voxels.empty())
      {
        continue; // organ absent: no patches
      }
      std::mt19937_64 rng(m_Seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(organ));
      for (unsigned int n = 0; n < m_PatchesPerOrgan; ++n)
      {
        PointType p;
        image->TransformIndexToPhysicalPoint(voxels[rng() % voxels.size()], p);
        centres.push_back({ organ, p });
      }
    }
    else
    {
      // Per axial slice: the physical (x, y) box of the attention voxels, covered by a grid of tiles.
      const auto sliceCount = static_cast<IndexValueType>(region.GetSize(axial));
      for (IndexValueType k = 0; k < sliceCount; ++k)
      {
        auto slice = region;
        slice.SetIndex(axial, region.GetIndex(axial) + k);
        slice.SetSize(axial, 1);
        // The slice's attention box (index space, one fast pass), its corners in physical space.
        const auto boxes = LabelBoundingBoxes(attention.GetPointer(), slice, true);
        if (boxes.empty())
          continue;
        const auto & box = boxes.begin()->second;
        double       xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300, zsum = 0;
        for (unsigned int corner = 0; corner < 8; ++corner)
        {
          IndexType index = box.GetIndex();
          for (unsigned int d = 0; d < 3; ++d)
            if (corner & (1u << d))
              index[d] += static_cast<IndexValueType>(box.GetSize(d)) - 1;
          PointType p;
          image->TransformIndexToPhysicalPoint(index, p);
          xmin = std::min(xmin, p[0]);
          xmax = std::max(xmax, p[0]);
          ymin = std::min(ymin, p[1]);
          ymax = std::max(ymax, p[1]);
          zsum += p[2];
        }
        const double z = zsum / 8; // the slice's centre (on a tilted grid the corners' mean)
        // Tile t covers [c - P/2 s - s/2, c + (P/2 - 1) s + s/2] around its centre pixel c.
        const double step = std::max(1.0, std::floor(P * (1.0 - m_Overlap))) * s;
        auto         starts = [&](double lo, double hi) {
          // A tile grid this dense (a patch spacing far below the voxels', on a wide box) would
          // fill the memory with tile centres long before the network sees one.
          if ((hi - lo) / step > 1e4)
            itkExceptionMacro(<< "tiles of " << P << " pixels at " << s << " mm would need " << (hi - lo) / step
                              << " tiles across a " << hi - lo << " mm attention box; at most 10000 per axis");
          std::vector<double> c;
          for (double first = lo + (P / 2) * s;; first += step)
          {
            c.push_back(first);
            if (first + (P / 2 - 1) * s >= hi - 1e-9)
              break;
          }
          return c;
        };
        for (double cy : starts(ymin, ymax))
          for (double cx : starts(xmin, xmax))
          {
            PointType p;
            p[0] = cx;
            p[1] = cy;
            p[2] = z;
            centres.push_back({ organ, p });
          }
      }
    }
  }

  PatchPlan  plan;
  const auto N = centres.size();
  plan.metadata.resize(N);
  plan.frames.resize(N);
  plan.centres.resize(N);
  const auto inverseDirection = image->GetInverseDirection();
  const auto origin = image->GetOrigin();
  auto       toIndex = [&](unsigned int i, unsigned int d) { return inverseDirection(i, d) / spacing[i]; };
  std::map<LabelType, int64_t> position; // the organ's place among the attention maps (label order)
  for (const auto & entry : m_Attention)
    position.emplace(entry.first, static_cast<int64_t>(position.size()));
  for (size_t n = 0; n < N; ++n)
  {
    const Centre &     c = centres[n];
    agcl::PatchFrame & f = plan.frames[n];
    for (unsigned int i = 0; i < 3; ++i)
    {
      f.first[i] = 0.0;
      for (unsigned int d = 0; d < 3; ++d)
      {
        const double first = c.point[d] - origin[d] - (d == 0 ? (P / 2) * s : 0.0) - (d == 1 ? (P / 2) * s : 0.0);
        f.first[i] += toIndex(i, d) * first;
      }
      f.column[i] = toIndex(i, 0) * s; // columns: patient left (+x)
      f.row[i] = toIndex(i, 1) * s;    // rows: posterior (+y)
    }
    f.organ = position.at(c.organ);
    f.planar = f.column[1] == 0.0 && f.column[2] == 0.0 && f.row[0] == 0.0 && f.row[2] == 0.0 &&
               std::abs(f.first[2] - std::nearbyint(f.first[2])) <= 1e-6;
    TensorItemMetadata & m = plan.metadata[n];
    m.organ = static_cast<int>(c.organ);
    m.modality = m_Modality;
    PointType first = c.point;
    first[0] -= (P / 2) * s;
    first[1] -= (P / 2) * s;
    typename InputImageType::IndexType centreIndex, firstIndex;
    image->TransformPhysicalPointToIndex(c.point, centreIndex);
    image->TransformPhysicalPointToIndex(first, firstIndex);
    m.slice = centreIndex[axial];
    for (unsigned int d = 0; d < 3; ++d)
    {
      m.index[d] = firstIndex[d];
      m.origin[d] = first[d];
    }
    m.spacing = { s, s };
    m.axes = { 1, 0, 0, 0, 1, 0 };
    plan.centres[n] = c.point;
  }
  return plan;
}

template <typename TInputImage, typename TLabelImage>
void
QueryPatchSamplerFilter<TInputImage, TLabelImage>::GenerateData()
{
  const InputImageType * image = this->GetInput();
  const auto *           labels = dynamic_cast<const LabelImageType *>(this->ProcessObject::GetInput("LabelMap"));
  const auto             region = image->GetLargestPossibleRegion();
  // The previous output's patch buffer is reused when nothing else holds it (no tensor, no view
  // of its storage): AGCLSegmentationFilter samples slab after slab with one sampler, and fresh
  // pages cost more than the sampling written on them. The output is emptied first, so a run
  // that fails below leaves no stale patches behind.
  at::Tensor reusable;
  {
    TensorDataObject * previous = this->GetOutput();
    at::Tensor         buffer = previous->HasTensor("image") ? previous->GetTensor("image") : at::Tensor();
    previous->Initialize();
    if (buffer.defined() && buffer.use_count() == 1 && buffer.storage().use_count() == 1 && buffer.is_cpu() &&
        buffer.scalar_type() == at::kFloat && !buffer.requires_grad())
      reusable = buffer;
  }
  const PatchPlan plan = PlanPatches(); // checks the image (finite, geometry)
  const int64_t   P = m_PatchSize;
  const int64_t   N = static_cast<int64_t>(plan.frames.size());
  at::Tensor      patches = reusable.defined() ? reusable.resize_({ N, 2, P, P }) : at::Tensor();
  if (!patches.defined())
    patches = at::empty({ N, 2, P, P }, at::TensorOptions().dtype(at::kFloat));
  at::Tensor labelPatches;
  if (labels)
  {
    labelPatches = at::empty({ N, 1, P, P }, at::TensorOptions().dtype(at::kByte));
  }
  float *   out = patches.data_ptr<float>();
  uint8_t * outLabel = labels ? labelPatches.data_ptr<uint8_t>() : nullptr;
  auto      interpolator = LinearInterpolateImageFunction<InputImageType, double>::New();
  interpolator->SetInputImage(image);
  const double width = m_WindowHigh - m_WindowLow;

  // Physical point -> continuous index is affine, so pixel (q, r) of a patch is at
  // c0 + q dq + r dr in index space. Where all 8 neighbours are inside the image the trilinear
  // interpolation is done here on the buffer (the formula of ITK's linear interpolator);
  // elsewhere (the border, outside) ITK's interpolator decides.
  const auto    start = region.GetIndex();
  const auto    size = region.GetSize();
  const auto *  buffer = image->GetBufferPointer();
  const int64_t strideY = static_cast<int64_t>(size[0]), strideZ = strideY * static_cast<int64_t>(size[1]);
  // Patches are independent: sampled in parallel (the interpolator's Evaluate is thread-safe).
  auto samplePatch = [&](SizeValueType patch) {
    const int64_t  n = static_cast<int64_t>(patch);
    const auto     organ = static_cast<LabelType>(plan.metadata[n].organ);
    const auto &   centre = plan.centres[n];
    const double   s = plan.metadata[n].spacing[0];
    const auto &   attention = m_Attention.at(organ);
    const auto *   attentionBuffer = attention->GetBufferPointer();
    const auto *   labelBuffer = labels ? labels->GetBufferPointer() : nullptr;
    const auto &   frame = plan.frames[n];
    const double * c0 = frame.first.data();
    const double * dq = frame.column.data();
    const double * dr = frame.row.data();
    auto           store = [&](int64_t r, int64_t q, double value, bool inside, int64_t voxel) {
      const int64_t at = ((n * 2) * P + r) * P + q;
      out[at] = static_cast<float>(std::clamp((value - m_WindowLow) / width, 0.0, 1.0));
      out[at + P * P] = inside && attentionBuffer[voxel] != LabelType{} ? 1.0f : 0.0f;
      if (outLabel)
      {
        outLabel[(n * P + r) * P + q] = inside && labelBuffer[voxel] == organ ? 1 : 0;
      }
    };
    // Outside the buffer's interior: ITK's interpolator decides (its border rules), window low
    // outside the image.
    auto evaluate = [&](int64_t r, int64_t q) {
      typename InputImageType::PointType p = centre;
      p[0] += (q - P / 2) * s;
      p[1] += (r - P / 2) * s;
      return interpolator->IsInsideBuffer(p) ? interpolator->Evaluate(p) : static_cast<double>(m_WindowLow);
    };
    if (dq[1] == 0.0 && dq[2] == 0.0 && dr[0] == 0.0 && dr[2] == 0.0)
    {
      // The patch's rows and columns run along the buffer's x and y (any spacing and sign): the
      // x of a column and the y of a row are the same for the whole patch, so their base
      // voxel, weight and nearest voxel are found once (the same arithmetic as the loop
      // below). A patch on a slice (z within 1e-6 voxel of an integer: every tile of the
      // inference grid) is interpolated bilinearly on that slice, so the slab's first and
      // last slices need no neighbour beyond them.
      struct Axis
      {
        int64_t base, nearest;
        double  weight;
        bool    interior, inside;
      };
      auto axis = [&](unsigned int i, double ci) {
        Axis a;
        a.base = static_cast<int64_t>(std::floor(ci)) - start[i];
        a.nearest = static_cast<int64_t>(std::floor(ci + 0.5)) - start[i];
        a.weight = ci - std::floor(ci);
        a.interior = a.base >= 0 && a.base + 1 < static_cast<int64_t>(size[i]);
        a.inside = a.nearest >= 0 && a.nearest < static_cast<int64_t>(size[i]);
        return a;
      };
      std::vector<Axis> columns(P), rows(P);
      for (int64_t q = 0; q < P; ++q)
        columns[q] = axis(0, c0[0] + q * dq[0]);
      for (int64_t r = 0; r < P; ++r)
        rows[r] = axis(1, c0[1] + r * dr[1]);
      Axis       z = axis(2, c0[2]);
      const bool planar = frame.planar; // |c0 z - round| <= 1e-6 (PlanPatches)
      if (planar)
      {
        z.base = z.nearest;
        z.weight = 0.0;
        z.interior = z.inside;
      }
      // One pixel, any case (as below on the fast rows, with ITK's interpolator at the border).
      auto pixel = [&](int64_t r, int64_t q) {
        const Axis &  x = columns[q];
        const Axis &  y = rows[r];
        const bool    inside = x.inside && y.inside && z.inside;
        const int64_t voxel = inside ? z.nearest * strideZ + y.nearest * strideY + x.nearest : 0;
        double        value;
        if (x.interior && y.interior && z.interior)
        {
          const int64_t at0 = z.base * strideZ + y.base * strideY + x.base;
          auto          v = [&](int64_t dz, int64_t dy, int64_t dx) {
            return static_cast<double>(buffer[at0 + dz * strideZ + dy * strideY + dx]);
          };
          const double x00 = v(0, 0, 0) + x.weight * (v(0, 0, 1) - v(0, 0, 0));
          const double x10 = v(0, 1, 0) + x.weight * (v(0, 1, 1) - v(0, 1, 0));
          const double y0 = x00 + y.weight * (x10 - x00);
          if (planar)
            value = y0;
          else
          {
            const double x01 = v(1, 0, 0) + x.weight * (v(1, 0, 1) - v(1, 0, 0));
            const double x11 = v(1, 1, 0) + x.weight * (v(1, 1, 1) - v(1, 1, 0));
            const double y1 = x01 + y.weight * (x11 - x01);
            value = y0 + z.weight * (y1 - y0);
          }
        }
        else
          value = evaluate(r, q);
        store(r, q, value, inside, voxel);
      };
      const double low = m_WindowLow;
      for (int64_t r = 0; r < P; ++r)
      {
        const Axis & y = rows[r];
        if (!(planar && y.interior && y.inside && z.interior && z.inside && outLabel == nullptr))
        {
          for (int64_t q = 0; q < P; ++q)
            pixel(r, q);
          continue;
        }
        // A row of a planar patch inside the slab (nearly every row at inference): the two
        // buffer rows it blends are fixed, so each pixel is the bilinear formula above on them.
        const auto *  row0 = buffer + z.base * strideZ + y.base * strideY;
        const auto *  row1 = row0 + strideY;
        const int64_t nearestRow = z.nearest * strideZ + y.nearest * strideY;
        float *       image = out + ((n * 2) * P + r) * P;
        float *       mask = image + P * P;
        for (int64_t q = 0; q < P; ++q)
        {
          const Axis & x = columns[q];
          if (!(x.interior && x.inside))
          {
            pixel(r, q);
            continue;
          }
          const double v00 = static_cast<double>(row0[x.base]), v01 = static_cast<double>(row0[x.base + 1]);
          const double v10 = static_cast<double>(row1[x.base]), v11 = static_cast<double>(row1[x.base + 1]);
          const double x00 = v00 + x.weight * (v01 - v00);
          const double x10 = v10 + x.weight * (v11 - v10);
          const double value = x00 + y.weight * (x10 - x00);
          image[q] = static_cast<float>(std::clamp((value - low) / width, 0.0, 1.0));
          mask[q] = attentionBuffer[nearestRow + x.nearest] != LabelType{} ? 1.0f : 0.0f;
        }
      }
    }
    else
      for (int64_t r = 0; r < P; ++r)
        for (int64_t q = 0; q < P; ++q)
        {
          double  ci[3];
          int64_t base[3], nearest[3];
          bool    interior = true, inside = true;
          for (unsigned int i = 0; i < 3; ++i)
          {
            ci[i] = c0[i] + q * dq[i] + r * dr[i];
            base[i] = static_cast<int64_t>(std::floor(ci[i])) - start[i];
            nearest[i] = static_cast<int64_t>(std::floor(ci[i] + 0.5)) - start[i];
            interior = interior && base[i] >= 0 && base[i] + 1 < static_cast<int64_t>(size[i]);
            inside = inside && nearest[i] >= 0 && nearest[i] < static_cast<int64_t>(size[i]);
          }
          double value;
          if (interior)
          {
            const double  f[3] = { ci[0] - std::floor(ci[0]), ci[1] - std::floor(ci[1]), ci[2] - std::floor(ci[2]) };
            const int64_t at0 = base[2] * strideZ + base[1] * strideY + base[0];
            auto          v = [&](int64_t dz, int64_t dy, int64_t dx) {
              return static_cast<double>(buffer[at0 + dz * strideZ + dy * strideY + dx]);
            };
            const double x00 = v(0, 0, 0) + f[0] * (v(0, 0, 1) - v(0, 0, 0));
            const double x10 = v(0, 1, 0) + f[0] * (v(0, 1, 1) - v(0, 1, 0));
            const double x01 = v(1, 0, 0) + f[0] * (v(1, 0, 1) - v(1, 0, 0));
            const double x11 = v(1, 1, 0) + f[0] * (v(1, 1, 1) - v(1, 1, 0));
            const double y0 = x00 + f[1] * (x10 - x00);
            const double y1 = x01 + f[1] * (x11 - x01);
            value = y0 + f[2] * (y1 - y0);
          }
          else
            value = evaluate(r, q);
          store(r, q, value, inside, inside ? nearest[2] * strideZ + nearest[1] * strideY + nearest[0] : 0);
        }
  };
  this->GetMultiThreader()->ParallelizeArray(0, static_cast<SizeValueType>(N), samplePatch, nullptr);

  TensorDataObject * output = this->GetOutput();
  output->Initialize();
  output->SetTensor("image", patches);
  if (labels)
  {
    output->SetTensor("label", labelPatches);
  }
  output->SetMetadata(plan.metadata);
}

template <typename TInputImage, typename TLabelImage>
void
QueryPatchSamplerFilter<TInputImage, TLabelImage>::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "Mode: " << (m_Mode == ModeEnum::Training ? "Training" : "Inference") << std::endl;
  os << indent << "PatchSize: " << m_PatchSize << std::endl;
  os << indent << "PatchSpacingMM: " << m_PatchSpacingMM << std::endl;
  os << indent << "PatchesPerOrgan: " << m_PatchesPerOrgan << std::endl;
  os << indent << "Overlap: " << m_Overlap << std::endl;
  os << indent << "Seed: " << m_Seed << std::endl;
  os << indent << "Window: " << m_WindowLow << ".." << m_WindowHigh << std::endl;
  os << indent << "Modality: " << m_Modality << std::endl;
  os << indent << "AttentionMaps: " << m_Attention.size() << std::endl;
}

} // namespace itk

#endif
