/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_ProjectionHead_h
#define agcl_ProjectionHead_h

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace agcl {

struct ProjectionHeadOptions
{
  explicit ProjectionHeadOptions(int64_t inFeatures)
    : in_features_(inFeatures)
  {}
  TORCH_ARG(int64_t, in_features);
  /** Hidden width; 0 = in_features (the representation size), as in SimCLR/SupCon. */
  TORCH_ARG(int64_t, hidden_features) = 0;
  /** O_E = 256 in the paper (§III-A, projection network P). */
  TORCH_ARG(int64_t, out_features) = 256;
};

/** Projection network P of stage 1: Linear - ReLU - Linear, then L2 normalisation.
 *  [N, in_features] -> [N, out_features] unit vectors. Discarded after stage 1. */
class ProjectionHeadImpl : public torch::nn::Module
{
public:
  explicit ProjectionHeadImpl(ProjectionHeadOptions options);
  torch::Tensor
  forward(const torch::Tensor & representation);

private:
  ProjectionHeadOptions m_Options;
  torch::nn::Linear     m_Hidden{ nullptr };
  torch::nn::Linear     m_Output{ nullptr };
};
TORCH_MODULE(ProjectionHead);

} // namespace agcl

#endif
