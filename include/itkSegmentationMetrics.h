/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkSegmentationMetrics_h
#define itkSegmentationMetrics_h

#include "itkImage.h"

#include <optional>
#include <string>
#include <vector>

namespace itk {

/** \class SegmentationMetrics
 * \brief Overlap and surface-distance metrics of a predicted label map against a reference, per
 * organ, as the paper evaluates (Dice; surface distances in mm).
 *
 * Definitions (Documentation/evaluation.md):
 * - Dice = 2 |A ∩ B| / (|A| + |B|); IoU = |A ∩ B| / |A ∪ B| (A reference, B prediction voxels).
 * - Surface voxels of a label: its voxels with at least one face neighbour (6-neighbourhood)
 *   outside the label; outside the image counts as outside the label.
 * - Distances: from every surface voxel of A to the nearest surface voxel of B and from every
 *   surface voxel of B to the nearest of A, Euclidean between voxel centres in mm with the
 *   image spacing, pooled (symmetric). MSD = their mean, HD = their maximum, HD95 = their 95th
 *   percentile with linear interpolation between order statistics (numpy's default:
 *   position 0.95 (n - 1) in the sorted list).
 * - Empty cases are reported by Status, never as a silent 0 or NaN: ReferenceEmpty or
 *   PredictionEmpty (Dice and IoU are 0, distances undefined), BothEmpty (nothing defined).
 *
 * The distances come from an exact Euclidean distance transform (SignedMaurerDistanceMapImage
 * Filter with the spacing) of the other surface, on the two organs' joint bounding box; a test
 * checks them against brute force on anisotropic voxels.
 * \ingroup AGCLSegmentation
 */
template <typename TLabelImage>
class ITK_TEMPLATE_EXPORT SegmentationMetrics
{
public:
  using LabelImageType = TLabelImage;
  using LabelType = typename TLabelImage::PixelType;

  enum class StatusEnum : uint8_t
  {
    Ok,
    ReferenceEmpty,
    PredictionEmpty,
    BothEmpty
  };

  struct OrganMetrics
  {
    LabelType             label{};
    StatusEnum            status{ StatusEnum::Ok };
    uint64_t              referenceVoxels = 0;
    uint64_t              predictedVoxels = 0;
    std::optional<double> dice, iou, msd, hd, hd95; // mm for the distances
  };

  /** Metrics of each organ in `organs`. The two images must have the same size, spacing,
   *  origin and direction (itk::ExceptionObject otherwise). */
  static std::vector<OrganMetrics>
  Compute(const LabelImageType * reference, const LabelImageType * prediction, const std::vector<LabelType> & organs);

  static std::string
  StatusName(StatusEnum status);
};

} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkSegmentationMetrics.hxx"
#endif

#endif
