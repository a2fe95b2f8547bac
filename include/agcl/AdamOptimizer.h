/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_AdamOptimizer_h
#define agcl_AdamOptimizer_h

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace agcl {

class ModelBundle;

struct AdamOptions
{
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  /** Decoupled weight decay (AdamW, Loshchilov & Hutter): p <- p (1 - lr wd) before the step. */
  double weight_decay = 0.0;
  /** One multi-tensor ("foreach") kernel per operation over every parameter with a gradient (on
   *  CUDA a handful of launches per step instead of about eight per parameter), rather than a
   *  loop over the parameters. Both give the same update, bit for bit (the same operations in
   *  the same order; tested); false is kept as the reference and for the benchmark. */
  bool multi_tensor = true;
};

/** Adam / AdamW over a fixed list of parameters, the same update as torch::optim::AdamW
 *  (bias-corrected moments, eps added after the square root). Our own rather than
 *  torch::optim's so that the trainer can write its state (moments and step count) into a
 *  checkpoint in the model-bundle format, as named tensors, without torch::save archives
 *  (DESIGN.md: model files never go through torch::load). */
class AdamOptimizer
{
public:
  AdamOptimizer(std::vector<at::Tensor> parameters, AdamOptions options = {});

  /** Clears every parameter's gradient. */
  void
  ZeroGrad();

  /** One update with learning rate `lr` (times the parameter's scale); parameters without a
   *  gradient are left alone. */
  void
  Step(double lr);
  /** Per-parameter factors on the learning rate (and on the decoupled weight decay's lr), in
   *  parameter order, e.g. a fine-tuned encoder's smaller rate beside its decoder's; all 1 by
   *  default. std::invalid_argument unless one finite factor >= 0 per parameter. */
  void
  SetLearningRateScales(std::vector<double> scales);

  int64_t
  StepCount() const
  {
    return m_Step;
  }

  /** Writes "prefix.step" and "prefix.<i>.m" / "prefix.<i>.v" (i = parameter order). */
  void
  Save(ModelBundle & bundle, const std::string & prefix) const;
  /** Reads what Save wrote; a missing tensor or another shape throws ModelBundleError. */
  void
  Load(const ModelBundle & bundle, const std::string & prefix);

private:
  void
  StepMultiTensor(double rate, double correction1, double correction2);

  std::vector<at::Tensor> m_Parameters;
  std::vector<at::Tensor> m_First;
  std::vector<at::Tensor> m_Second;
  std::vector<double>     m_Scales;
  AdamOptions             m_Options;
  int64_t                 m_Step = 0;
};

} // namespace agcl

#endif
