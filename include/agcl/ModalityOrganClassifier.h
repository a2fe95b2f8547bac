/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_ModalityOrganClassifier_h
#define agcl_ModalityOrganClassifier_h

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace agcl {

struct ModalityOrganClassifierOptions
{
  ModalityOrganClassifierOptions(int64_t inFeatures, int64_t numberOfModalities, int64_t numberOfOrgans)
    : in_features_(inFeatures)
    , modalities_(numberOfModalities)
    , organs_(numberOfOrgans)
  {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, modalities);
  TORCH_ARG(int64_t, organs);
};

/** The paper's CE pre-training baseline: a linear classifier on the encoder's representation
 *  over the M x O (modality, organ) classes, trained with cross-entropy; class id
 *  modality * O + organ (ModalityOrganClass in PretrainingMode.h). Discarded after stage 1.
 *  forward: representation [N, D] -> logits [N, M*O]; Loss: mean cross-entropy. */
class ModalityOrganClassifierImpl : public torch::nn::Module
{
public:
  explicit ModalityOrganClassifierImpl(ModalityOrganClassifierOptions options);

  torch::Tensor
  forward(const torch::Tensor & representation);

  /** Mean cross-entropy of logits [N, M*O] against (modality [N], organ [N]). */
  torch::Tensor
  Loss(const torch::Tensor & logits, const torch::Tensor & modality, const torch::Tensor & organ) const;

private:
  ModalityOrganClassifierOptions m_Options;
  torch::nn::Linear              m_Linear{ nullptr };
};
TORCH_MODULE(ModalityOrganClassifier);

} // namespace agcl

#endif
