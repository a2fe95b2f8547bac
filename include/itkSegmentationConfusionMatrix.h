/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkSegmentationConfusionMatrix_h
#define itkSegmentationConfusionMatrix_h

#include "itkImage.h"
#include "itkMacro.h"

#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>
#include <vector>

namespace itk {

/** \class SegmentationConfusionMatrix
 * \brief Pixel counts of (reference class, predicted class) accumulated over a whole set of
 * label images, and the mean intersection over union computed from them as PASCAL VOC does
 * (paper, Table III; Documentation/evaluation.md).
 *
 * - Classes are the label values 0 .. N-1 (VOC: 21, background 0 and 20 object classes).
 * - Reference pixels with the ignore label (VOC: 255, "void") are left out of every count.
 * - One matrix over the whole set (not a mean of per-image IoUs): IoU_c = TP_c / (TP_c + FP_c +
 *   FN_c), with TP_c the pixels of class c in both, FP_c predicted c but another class in the
 *   reference, FN_c the reverse.
 * - The mean IoU averages IoU_c over the classes present in the reference or the prediction
 *   (TP_c + FP_c + FN_c > 0); a class absent from both has no IoU (not a 0).
 * - Any other reference value, and any prediction value that is not a class (the ignore label
 *   included), is an error: itk::ExceptionObject names the value, its pixel and the image.
 *
 * A test checks every figure against a brute-force recount over the pixels.
 * \ingroup AGCLSegmentation
 */
template <typename TLabelImage>
class ITK_TEMPLATE_EXPORT SegmentationConfusionMatrix
{
public:
  using LabelImageType = TLabelImage;
  using LabelType = typename TLabelImage::PixelType;

  /** `numberOfClasses` classes 0 .. N-1 (1 .. 256 for 8-bit labels); `ignoreLabel` must not be
   *  one of them. */
  SegmentationConfusionMatrix(unsigned numberOfClasses, LabelType ignoreLabel)
    : m_NumberOfClasses(numberOfClasses)
    , m_IgnoreLabel(ignoreLabel)
  {
    if (numberOfClasses == 0 || static_cast<double>(numberOfClasses - 1) > NumericTraits<LabelType>::max())
    {
      itkGenericExceptionMacro("SegmentationConfusionMatrix: " << numberOfClasses
                                                               << " classes do not fit the label type");
    }
    if (static_cast<double>(ignoreLabel) >= 0 && static_cast<double>(ignoreLabel) < numberOfClasses)
    {
      itkGenericExceptionMacro("SegmentationConfusionMatrix: the ignore label " << +ignoreLabel << " is one of the "
                                                                                << numberOfClasses << " classes");
    }
    m_Counts.assign(static_cast<size_t>(numberOfClasses) * numberOfClasses, 0);
  }

  /** Adds the pixels of one image pair. The two must have the same size, spacing, origin and
   *  direction; `name` names the pair in the errors. Nothing is added when it raises. */
  void
  Accumulate(const LabelImageType * reference, const LabelImageType * prediction, const std::string & name = "")
  {
    const std::string what = name.empty() ? std::string("image pair") : "'" + name + "'";
    if (!reference || !prediction)
      itkGenericExceptionMacro("SegmentationConfusionMatrix: " << what << ": a null image");
    const auto region = reference->GetLargestPossibleRegion();
    if (prediction->GetLargestPossibleRegion() != region)
    {
      itkGenericExceptionMacro("SegmentationConfusionMatrix: " << what << ": the prediction's size "
                                                               << prediction->GetLargestPossibleRegion().GetSize()
                                                               << " differs from the reference's " << region.GetSize());
    }
    const double tolerance = 1e-4;
    for (unsigned d = 0; d < TLabelImage::ImageDimension; ++d)
    {
      if (std::abs(prediction->GetSpacing()[d] - reference->GetSpacing()[d]) > tolerance * reference->GetSpacing()[d] ||
          std::abs(prediction->GetOrigin()[d] - reference->GetOrigin()[d]) > tolerance * reference->GetSpacing()[d])
      {
        itkGenericExceptionMacro("SegmentationConfusionMatrix: " << what
                                                                 << ": the prediction's spacing or origin differs from "
                                                                    "the reference's");
      }
    }
    if (!prediction->GetDirection().GetVnlMatrix().is_equal(reference->GetDirection().GetVnlMatrix(), tolerance))
    {
      itkGenericExceptionMacro("SegmentationConfusionMatrix: " << what
                                                               << ": the prediction's direction differs from the "
                                                                  "reference's");
    }
    const LabelType *     ref = reference->GetBufferPointer();
    const LabelType *     pred = prediction->GetBufferPointer();
    const size_t          n = region.GetNumberOfPixels();
    std::vector<uint64_t> counts(m_Counts.size(), 0);
    uint64_t              ignored = 0;
    for (size_t v = 0; v < n; ++v)
    {
      const auto p = static_cast<double>(pred[v]);
      if (!(p >= 0 && p < m_NumberOfClasses && p == static_cast<double>(static_cast<int64_t>(p))))
        Refuse(prediction, v, pred[v], what, "prediction");
      if (ref[v] == m_IgnoreLabel)
      {
        ++ignored;
        continue;
      }
      const auto r = static_cast<double>(ref[v]);
      if (!(r >= 0 && r < m_NumberOfClasses && r == static_cast<double>(static_cast<int64_t>(r))))
        Refuse(reference, v, ref[v], what, "reference");
      ++counts[static_cast<size_t>(r) * m_NumberOfClasses + static_cast<size_t>(p)];
    }
    for (size_t i = 0; i < counts.size(); ++i)
      m_Counts[i] += counts[i];
    m_IgnoredPixels += ignored;
    ++m_NumberOfImages;
  }

  /** Pixels of reference class `r` predicted as `p`. */
  uint64_t
  Count(unsigned r, unsigned p) const
  {
    return m_Counts.at(static_cast<size_t>(r) * m_NumberOfClasses + p);
  }

  uint64_t
  TruePositives(unsigned c) const
  {
    return Count(c, c);
  }
  /** Pixels of class c in the reference (TP + FN) and in the prediction (TP + FP), void left out. */
  uint64_t
  ReferencePixels(unsigned c) const
  {
    uint64_t sum = 0;
    for (unsigned p = 0; p < m_NumberOfClasses; ++p)
      sum += Count(c, p);
    return sum;
  }
  uint64_t
  PredictedPixels(unsigned c) const
  {
    uint64_t sum = 0;
    for (unsigned r = 0; r < m_NumberOfClasses; ++r)
      sum += Count(r, c);
    return sum;
  }
  /** TP + FP + FN. */
  uint64_t
  UnionPixels(unsigned c) const
  {
    return ReferencePixels(c) + PredictedPixels(c) - TruePositives(c);
  }

  /** IoU of class c; empty when the class is in neither the reference nor the prediction. */
  std::optional<double>
  IoU(unsigned c) const
  {
    const uint64_t u = UnionPixels(c);
    if (u == 0)
      return std::nullopt;
    return static_cast<double>(TruePositives(c)) / static_cast<double>(u);
  }

  /** The mean of IoU(c) over the classes that have one; empty when no pixel was counted. */
  std::optional<double>
  MeanIoU() const
  {
    double   sum = 0;
    unsigned present = 0;
    for (unsigned c = 0; c < m_NumberOfClasses; ++c)
    {
      if (const auto iou = IoU(c))
      {
        sum += *iou;
        ++present;
      }
    }
    if (present == 0)
      return std::nullopt;
    return sum / present;
  }

  /** Correctly labelled share of the counted (non-void) pixels; empty when none was counted. */
  std::optional<double>
  PixelAccuracy() const
  {
    uint64_t correct = 0, all = 0;
    for (unsigned r = 0; r < m_NumberOfClasses; ++r)
      for (unsigned p = 0; p < m_NumberOfClasses; ++p)
      {
        all += Count(r, p);
        correct += r == p ? Count(r, p) : 0;
      }
    if (all == 0)
      return std::nullopt;
    return static_cast<double>(correct) / static_cast<double>(all);
  }

  unsigned
  GetNumberOfClasses() const
  {
    return m_NumberOfClasses;
  }
  LabelType
  GetIgnoreLabel() const
  {
    return m_IgnoreLabel;
  }
  uint64_t
  GetIgnoredPixels() const
  {
    return m_IgnoredPixels;
  }
  uint64_t
  GetNumberOfImages() const
  {
    return m_NumberOfImages;
  }

private:
  [[noreturn]] void
  Refuse(const LabelImageType * image, size_t offset, LabelType value, const std::string & what, const char * side)
    const
  {
    const auto         index = image->ComputeIndex(static_cast<typename LabelImageType::OffsetValueType>(offset));
    std::ostringstream os;
    os << "SegmentationConfusionMatrix: " << what << ": the " << side << " has the value " << +value << " at pixel "
       << index << "; expected a class 0.." << m_NumberOfClasses - 1;
    if (side == std::string("reference"))
      os << " or the ignore label " << +m_IgnoreLabel;
    itkGenericExceptionMacro(<< os.str());
  }

  unsigned              m_NumberOfClasses;
  LabelType             m_IgnoreLabel;
  std::vector<uint64_t> m_Counts; // [reference class][predicted class]
  uint64_t              m_IgnoredPixels = 0;
  uint64_t              m_NumberOfImages = 0;
};

} // namespace itk

#endif
