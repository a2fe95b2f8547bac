/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_DiceLoss_h
#define agcl_DiceLoss_h

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace agcl {

struct DiceLossOptions
{
  /** Added to numerator and denominator: an empty channel in both prediction and label scores 1. */
  TORCH_ARG(double, smooth) = 1e-5;
};

/** Soft Dice loss, paper Eq. 1: L = sum (1 - 2 s.y / (s + y)).
 *
 *  forward(logits [N, C, *spatial], target [N, *spatial] integer class ids in 0..C-1) -> scalar.
 *  A target id -1 marks an ignored pixel (PASCAL VOC's void): it counts in neither s nor y.
 *  The paper gives only the formula; our reading: s = softmax over the C channels (computed
 *  in float32), y = one-hot target, and for every sample n and channel c
 *      dice_nc = (2 sum(s_nc * y_nc) + smooth) / (sum(s_nc) + sum(y_nc) + smooth)
 *      loss    = 1 - mean over n and c of dice_nc
 *  i.e. the mean instead of the sum (batch-size independent), over BOTH channels of the
 *  binary organ patches (background, organ), smoothing 1e-5. Works for any C and any number
 *  of spatial dimensions, so the coarse 3D network (O + 1 classes) uses it too.
 */
class DiceLossImpl : public torch::nn::Module
{
public:
  explicit DiceLossImpl(DiceLossOptions options = {});

  torch::Tensor
  forward(const torch::Tensor & logits, const torch::Tensor & target);

private:
  DiceLossOptions m_Options;
};
TORCH_MODULE(DiceLoss);

} // namespace agcl

#endif
