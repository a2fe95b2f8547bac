/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_CoarseSegmentationNet_h
#define agcl_CoarseSegmentationNet_h

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

namespace agcl {

struct CoarseSegmentationNetOptions
{
  TORCH_ARG(int64_t, in_channels) = 1;
  /** O + 1: background and the organs (13 for BTCV's 12). */
  TORCH_ARG(int64_t, classes) = 13;
  /** Channels of the first level; doubled at each level down. */
  TORCH_ARG(int64_t, base_channels) = 16;
  /** Resolution levels (levels - 1 poolings by 2). */
  TORCH_ARG(int64_t, levels) = 4;
  /** Two more input channels made by the network itself: each voxel's in-plane position, x and
   *  y as (2 i + 1) / size - 1 over the (padded) input, so that organs that look alike (left and
   *  right kidney, spleen and liver) can be told apart by where they are, not only by context. */
  TORCH_ARG(bool, coordinates) = false;
  /** A 2D network in the same 3D frame (for 2D images, issue 19): kernels 1 x 3 x 3, pooling
   *  1 x 2 x 2, and each slice of the input is segmented on its own (its own instance-norm
   *  statistics), so D may be any size (a 2D image is one slice). The weights have the shapes of that 2D network with a depth of 1. */
  TORCH_ARG(bool, planar) = false;
};

/** Coarse 3D multi-organ segmentation (the role of RAP-Net in paper §III-A): a small 3D
 *  U-Net run at low resolution (e.g. 2-4 mm voxels). Each level is two 3x3x3 conv -
 *  InstanceNorm - ReLU blocks (instance norm: batches of one or two volumes); the decoder
 *  upsamples trilinearly and concatenates the skip. Trained with Dice + cross-entropy.
 *
 *  forward: [N, in_channels, D, H, W] -> logits [N, classes, D, H, W]; D, H and W must be
 *  multiples of 2^(levels - 1) (H and W only when planar). With coordinates, the first
 *  convolution sees in_channels + 2. */
class CoarseSegmentationNetImpl : public torch::nn::Module
{
public:
  explicit CoarseSegmentationNetImpl(CoarseSegmentationNetOptions options = {});
  torch::Tensor
  forward(const torch::Tensor & volume);
  /** Size multiple the input's spatial dimensions must have: 2^(levels - 1). */
  int64_t
  SizeMultiple() const;
  const CoarseSegmentationNetOptions &
  options() const
  {
    return m_Options;
  }

private:
  CoarseSegmentationNetOptions m_Options;
  torch::nn::ModuleList        m_Down{ nullptr };
  torch::nn::ModuleList        m_Up{ nullptr };
  torch::nn::Conv3d            m_Classifier{ nullptr };
};
TORCH_MODULE(CoarseSegmentationNet);

} // namespace agcl

#endif
