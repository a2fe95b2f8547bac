/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkManifestTrainingData_h
#define itkManifestTrainingData_h

#include "agcl/Manifest.h"
#include "agcl/PictureStages.h"
#include "agcl/TrainingData.h"
#include "itkImage.h"

#include <list>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace itk {

/** \class ManifestTrainingData
 * \brief A training cohort read from a manifest with ITK's IO: what agcl::AGCLTrainer trains on.
 *
 * The manifest (agcl/Manifest.h) needs the columns subject, image, modality, split and label
 * (a train row may leave its label empty: an unlabelled subject, used by stage 1 only; val rows
 * need one). Modalities must be among the config's; a named image or label file must exist.
 * Volumes are read on first use (any format ITK reads: NIfTI, NRRD, MetaImage, ...) and kept.
 *
 * The coarse samples use CoarseAttentionFilter::ResampleToCoarseGrid and ResampleLabels and the
 * patches CoarseAttentionFilter (attention) and QueryPatchSamplerFilter in training mode: the
 * functions inference uses, so training sees what inference sees. Label values that are not
 * organs of the config (e.g. BTCV's 13th label, the left adrenal gland) count as background;
 * each such value is reported once on std::cerr with the file it was first seen in.
 *
 * A 2D model (image.dimensions 2) reads its subjects as 2D pictures (itk::ReadPicture: JPEG, PNG,
 * ...; the model's image.channels components) with 8-bit label maps of the same size (palette
 * PNGs as their indices), and samples through the core's picture stages (agcl/PictureStages.h),
 * which inference (agcl::SegmentPicture) uses too. The label value 255 is void (PASCAL VOC's
 * object outlines and difficult regions): ignored by the training losses (class -1), attended by
 * no organ. Decoded pictures and label maps are kept up to PictureCacheLimit bytes (the least
 * recently used go first and are read again when needed): a VOC-sized cohort (10 582 pictures of
 * ~500 x 375, ~25 GB as float) does not fit in memory.
 *
 * Errors: agcl::ManifestError for the manifest, std::invalid_argument naming the subject and file
 * for unreadable images or a label map whose grid differs from its image.
 * \ingroup AGCLSegmentation
 */
class ManifestTrainingData : public agcl::TrainingData
{
public:
  using CTImageType = Image<short, 3>;
  using LabelImageType = Image<unsigned char, 3>;

  ManifestTrainingData(const std::string & manifest, const agcl::ModelConfig & config);

  std::vector<agcl::TrainingSubject>
  Subjects() const override;

  agcl::CoarseSample
  Coarse(size_t index, const agcl::ModelConfig & config) override;

  agcl::PatchSet
  Patches(size_t                index,
          agcl::AttentionSource source,
          agcl::AGCLModel &     model,
          const c10::Device &   device,
          int64_t               patchesPerOrgan,
          uint64_t              seed) override;

  /** The manifest rows, in order (paths resolved). */
  const std::vector<agcl::ManifestRow> &
  Rows() const
  {
    return m_Rows;
  }

  /** The most bytes of decoded pictures and label maps kept (2D models; default 2 GiB). At least
   *  the picture in use is kept, whatever the limit. */
  void
  SetPictureCacheLimit(size_t bytes);
  size_t
  GetPictureCacheLimit() const
  {
    return m_PictureCacheLimit;
  }
  /** The bytes of decoded pictures and label maps held now, and how many pictures were read. */
  size_t
  PictureCacheBytes() const
  {
    return m_PictureBytes;
  }
  size_t
  PicturesRead() const
  {
    return m_PicturesRead;
  }

  /** Label values seen that are not organs of the config. */
  const std::set<int> &
  IgnoredLabels() const
  {
    return m_Ignored;
  }

private:
  const CTImageType *
  GetImage(size_t index);
  const LabelImageType *
  GetLabels(size_t index);
  /** A decoded picture and (once read) its label values [H, W] uint8, with its place in the
   *  cache's use order (most recent first). */
  struct CachedPicture
  {
    agcl::Picture               picture;
    at::Tensor                  labels;
    std::list<size_t>::iterator use;
  };
  /** The cache's entry of `index` (the picture read when absent), marked as most recently used. */
  CachedPicture &
  PictureEntry(size_t index);
  /** Drops the least recently used entries other than `keep` while over the limit. */
  void
  TrimPictureCache(size_t keep);
  agcl::Picture
  GetPicture(size_t index);
  /** The picture's label values [H, W] uint8 (255 void). */
  at::Tensor
  GetPictureLabels(size_t index);
  /** The picture's class map [H, W] int64: 0 background, i = organ i-1, -1 void (label 255). */
  at::Tensor
  GetPictureClasses(size_t index);
  agcl::PatchSet
  PicturePatches(size_t                index,
                 agcl::AttentionSource source,
                 agcl::AGCLModel &     model,
                 const c10::Device &   device,
                 int64_t               patchesPerOrgan,
                 uint64_t              seed);
  void
  ReportUnknownLabels(const std::set<int> & unknown, const std::string & file);

  agcl::ModelConfig                         m_Config;
  std::vector<agcl::ManifestRow>            m_Rows;
  std::vector<agcl::TrainingSubject>        m_Subjects;
  std::map<size_t, CTImageType::Pointer>    m_Images;
  std::map<size_t, LabelImageType::Pointer> m_Labels;
  std::set<int>                             m_Ignored;
  std::map<size_t, CachedPicture>           m_Pictures;
  std::list<size_t>                         m_PictureUse; // most recently used first
  size_t                                    m_PictureBytes{ 0 };
  size_t                                    m_PictureCacheLimit{ size_t{ 2 } << 30 };
  size_t                                    m_PicturesRead{ 0 };
};

} // namespace itk

#endif
