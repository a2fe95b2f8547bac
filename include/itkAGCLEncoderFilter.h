/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkAGCLEncoderFilter_h
#define itkAGCLEncoderFilter_h

#include "itkTensorDataObjectFilter.h"

#include "agcl/ResNetEncoder.h"

#include <string>

namespace itk {

/** \class AGCLEncoderFilter
 * \brief Runs the AGCL encoder on query patches: TensorDataObject "image" [N, C, P, P] in,
 * the same object's metadata plus "low_level" [N, Cl, P/4, P/4] and "high_level"
 * [N, Ch, P/16, P/16] out, on the chosen device (features stay there for the decoder); with
 * StemFeaturesOn() also "stem" [N, Cs, P/2, P/2], which a decoder with logits at stride 2
 * (model configuration decoder.output_stride 2) needs.
 *
 * Inference only: the encoder runs in eval mode under torch::NoGradGuard, in batches of
 * BatchSize patches. SetDevice("cpu" | "cuda" | "cuda:N") is checked when the filter runs; a
 * device that cannot be used, a wrong input shape or any LibTorch error is an
 * itk::ExceptionObject. The "image" tensor is passed through to the output.
 * \ingroup AGCLSegmentation
 */
class AGCLEncoderFilter : public TensorDataObjectFilter
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(AGCLEncoderFilter);
  using Self = AGCLEncoderFilter;
  using Superclass = TensorDataObjectFilter;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkNewMacro(Self);
  itkTypeMacro(AGCLEncoderFilter, TensorDataObjectFilter);

  /** The encoder (e.g. loaded from a model bundle with agcl::ModelBundle::LoadInto). */
  void
  SetEncoder(const agcl::ResNetEncoder & encoder);

  /** Also output the stride-2 stem features ("stem"); off by default (they are 4x the size of the
   *  low-level features). Needed when the decoder's UsesStem() is true. */
  itkSetMacro(StemFeatures, bool);
  itkGetConstMacro(StemFeatures, bool);
  itkBooleanMacro(StemFeatures);

protected:
  AGCLEncoderFilter() = default;
  ~AGCLEncoderFilter() override = default;
  void
  VerifyPreconditions() ITKv5_CONST override;
  void
  GenerateData() override;
  void
  PrintSelf(std::ostream & os, Indent indent) const override;

private:
  agcl::ResNetEncoder m_Encoder{ nullptr };
  bool                m_StemFeatures{ false };
};

} // namespace itk

#endif
