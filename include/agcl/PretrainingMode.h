/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_PretrainingMode_h
#define agcl_PretrainingMode_h

#include <ATen/core/Tensor.h>

#include <string>

namespace agcl {

/** Stage-1 pre-training modes (paper §IV ablation, Table II).
 *  - AGCL:   conditional contrastive loss, positives share modality AND organ (Eq. 3).
 *  - SupCon: positives share the organ only (Khosla et al., the paper's [15]).
 *  - SSCL:   self-supervised, only the other view of the same patch is positive (Eq. 2).
 *  - CE:     classification of the representation over the M x O (modality, organ) classes.
 *  - Random: random initialisation, no pre-training (the paper's RI baseline): stage 1 is
 *            skipped. Under the paper's protocol the encoder stays frozen in stage 2 (its
 *            BatchNorm statistics re-estimated); fine-tuned (finetune_encoder) it is the model
 *            trained end to end from scratch, which the aliases "none" and "supervised" name. */
enum class PretrainingMode
{
  AGCL,
  SupCon,
  SSCL,
  CE,
  Random
};

/** "agcl", "supcon", "sscl", "ce", "random" (any case), and "none" or "supervised" for Random
 *  (aliases that also mean fine-tuning: IsEndToEndAlias); std::invalid_argument otherwise. */
PretrainingMode
ParsePretrainingMode(const std::string & text);
/** Whether `text` is "none" or "supervised" (any case): the names, kept from earlier versions,
 *  of a randomly initialised model trained end to end, i.e. Random with finetune_encoder. */
bool
IsEndToEndAlias(const std::string & text);

std::string
ToString(PretrainingMode mode);

/** Whether the mode trains with ConditionalContrastiveLoss (AGCL, SupCon, SSCL). */
bool
IsContrastive(PretrainingMode mode);

/** The label vector that makes ConditionalContrastiveLoss implement `mode`.
 *
 *  Batch order: the 2N embeddings are [view 1 of patches 0..N-1, view 2 of patches 0..N-1],
 *  so rows k and k + N are the two views of patch k (PairedAugmentation produces this order).
 *  modality [N] in 0..M-1 and organ [N] in 0..O-1 (integer tensors, any device).
 *  Returns int64 [2N] on their device:
 *  - AGCL:   modality * O + organ       (Eq. 3)
 *  - SupCon: organ
 *  - SSCL:   the patch index k          (Eq. 2: only the other view shares it)
 *  CE and Random have no contrastive labels: std::invalid_argument. */
at::Tensor
ContrastiveLabels(PretrainingMode mode, const at::Tensor & modality, const at::Tensor & organ, int64_t numberOfOrgans);

/** Class index of (modality, organ) for the CE baseline: modality * O + organ, int64 [N]. */
at::Tensor
ModalityOrganClass(const at::Tensor & modality, const at::Tensor & organ, int64_t numberOfOrgans);

} // namespace agcl

#endif
