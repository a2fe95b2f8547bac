/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_ConditionalContrastiveLoss_h
#define agcl_ConditionalContrastiveLoss_h

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <utility>

namespace agcl {

struct ConditionalContrastiveLossOptions
{
  /** T of Eq. 2/3: the embeddings lie on a hypersphere of radius 1/T. The paper's best is 0.1. */
  TORCH_ARG(double, temperature) = 0.1;
  /** Refuse NaN/infinite embeddings with an exception. The check reads one value back from the
   *  device, which stalls CUDA's asynchronous queue once per call (measured in
   *  Documentation/performance.md); a training loop that checks its loss itself may turn it off. */
  TORCH_ARG(bool, check_finite) = true;
};

/** Multi-class conditional contrastive loss, paper Eq. 3 (and Eq. 2 as its special case).
 *
 *  forward(embeddings [2N, d] unit vectors, labels [2N] integer class ids) -> scalar.
 *
 *  For anchor k, with s_kj = z_k . z_j / T, J(k) = {j != k} and L(k) = {l in J(k) : labels[l] == labels[k]}:
 *
 *      loss_k = -1/|L(k)| * sum_{l in L(k)} [ s_kl - log sum_{j in J(k)} exp(s_kj) ]
 *      loss   = mean of loss_k over the anchors with |L(k)| > 0
 *
 *  - The paper writes a SUM over the 2N anchors; we take the MEAN, so that the learning
 *    rate does not depend on the batch size. Multiply by the number of anchors for the sum.
 *  - Anchors without any positive are left out of the mean (never NaN); with none at all
 *    the loss is 0 (still connected to the graph).
 *  - The mode of pre-training only changes the labels (see PretrainingMode.h): AGCL
 *    (modality x organ, Eq. 3), SupCon (organ), SSCL (patch index: only the other view is
 *    positive, Eq. 2). There is no second implementation.
 *  - Numerically stable: the denominator is a logsumexp over j != k. Under bf16/fp16
 *    autocast the similarity matrix is cast up to float32 before anything else.
 *  - Memory: the largest tensors are 2N x 2N (similarities, masks); nothing bigger.
 *  Bad input (shape, dtype, label count, fewer than 2 rows, non-finite values) throws
 *  std::invalid_argument naming the argument and the expected shape.
 */
class ConditionalContrastiveLossImpl : public torch::nn::Module
{
public:
  explicit ConditionalContrastiveLossImpl(ConditionalContrastiveLossOptions options = {});

  /** [2N, d], [2N] -> scalar (float32, or float64 for float64 input). */
  torch::Tensor
  forward(const torch::Tensor & embeddings, const torch::Tensor & labels);

  /** The loss's two parts for the anchors at rows [first, first + count) of `embeddings`
   *  against all its rows (the same J(k) and L(k) as above): {the sum of loss_k over those
   *  anchors that have a positive (a scalar with gradient), the number of such anchors (int64
   *  scalar)}. forward() is sum / max(number, 1) over all rows; a distributed run gives each
   *  rank its own anchors against every rank's rows (agcl::DistributedContrastiveLoss). Memory:
   *  count x 2N. The same checks as forward(), and first/count must lie within the rows. */
  std::pair<torch::Tensor, torch::Tensor>
  anchorSum(const torch::Tensor & embeddings, const torch::Tensor & labels, int64_t first, int64_t count);

  const ConditionalContrastiveLossOptions &
  options() const
  {
    return m_Options;
  }

private:
  ConditionalContrastiveLossOptions m_Options;
};
TORCH_MODULE(ConditionalContrastiveLoss);

} // namespace agcl

#endif
