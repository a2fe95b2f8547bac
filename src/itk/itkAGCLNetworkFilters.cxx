/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// AGCLEncoderFilter and ASPPDecoderFilter: the two network stages on query patches. One
// translation unit for both, since each pulls in <torch/torch.h> (~25 s to compile).
#include "itkASPPDecoderFilter.h"
#include "itkAGCLEncoderFilter.h"

#include "itkConvertTorchErrors.h"

#include "agcl/Device.h"
#include "agcl/ModuleOnDevice.h"
#include "agcl/TorchCompat.h"

#include <optional>

#include <torch/torch.h>

#include <stdexcept>

namespace itk {

// ---------------------------------------------------------------------------------------------
void
AGCLEncoderFilter::SetEncoder(const agcl::ResNetEncoder & encoder)
{
  m_Encoder = encoder;
  this->Modified();
}

void
AGCLEncoderFilter::VerifyPreconditions() ITKv5_CONST
{
  Superclass::VerifyPreconditions();
  if (m_Encoder.is_empty())
  {
    itkExceptionMacro(<< "no encoder: call SetEncoder()");
  }
}

void
AGCLEncoderFilter::GenerateData()
{
  const TensorDataObject * input = this->GetInput();
  TensorDataObject *       output = this->GetOutput();
  ConvertTorchErrors("AGCLEncoderFilter", [&] {
    const torch::Device                device = agcl::ParseDevice(this->GetDevice());
    const at::Tensor &                 image = input->GetTensor("image");
    const agcl::ModuleOnDevice         use(*m_Encoder, device); // shared by concurrent runs on one device
    torch::NoGradGuard                 noGrad;
    const c10::ScalarType              precision = agcl::ParsePrecision(this->GetPrecision(), device.type());
    std::optional<agcl::AutocastGuard> autocast; // float32: autocast left as it is
    if (precision != c10::kFloat)
      autocast.emplace(device.type(), precision);
    std::vector<at::Tensor> low, high, stem;
    const int64_t           n = image.size(0);
    for (int64_t start = 0; start < n; start += this->GetBatchSize())
    {
      const at::Tensor batch =
        image.slice(0, start, std::min<int64_t>(n, start + this->GetBatchSize())).to(device, at::kFloat);
      const auto features = m_Encoder->forward(batch);
      low.push_back(features.low_level);
      high.push_back(features.high_level);
      if (m_StemFeatures)
        stem.push_back(features.stem);
    }
    output->Initialize();
    output->SetTensor("image", image);
    if (n > 0)
    {
      output->SetTensor("low_level", torch::cat(low));
      output->SetTensor("high_level", torch::cat(high));
      if (m_StemFeatures)
        output->SetTensor("stem", torch::cat(stem));
    }
    output->SetMetadata(input->GetMetadata());
  });
}

void
AGCLEncoderFilter::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "Encoder: " << (m_Encoder.is_empty() ? "none" : "set") << std::endl;
  os << indent << "StemFeatures: " << m_StemFeatures << std::endl;
}

// ---------------------------------------------------------------------------------------------
void
ASPPDecoderFilter::SetDecoder(const agcl::ASPPDecoder & decoder)
{
  m_Decoder = decoder;
  this->Modified();
}

void
ASPPDecoderFilter::VerifyPreconditions() ITKv5_CONST
{
  Superclass::VerifyPreconditions();
  if (m_Decoder.is_empty())
  {
    itkExceptionMacro(<< "no decoder: call SetDecoder()");
  }
}

void
ASPPDecoderFilter::GenerateData()
{
  const TensorDataObject * input = this->GetInput();
  TensorDataObject *       output = this->GetOutput();
  ConvertTorchErrors("ASPPDecoderFilter", [&] {
    const torch::Device device = agcl::ParseDevice(this->GetDevice());
    const at::Tensor &  image = input->GetTensor("image");
    output->Initialize();
    output->SetTensor("image", image);
    output->SetMetadata(input->GetMetadata());
    const int64_t n = image.size(0);
    if (n == 0)
    {
      return;
    }
    const at::Tensor & low = input->GetTensor("low_level");
    const at::Tensor & high = input->GetTensor("high_level");
    at::Tensor         stem;
    if (m_Decoder->UsesStem())
    {
      if (!input->HasTensor("stem"))
      {
        throw std::invalid_argument(
          "this decoder's logits are at stride 2 (decoder.output_stride 2) and "
          "need the encoder's \"stem\" features; call StemFeaturesOn() on the AGCLEncoderFilter");
      }
      stem = input->GetTensor("stem");
    }
    const agcl::ModuleOnDevice         use(*m_Decoder, device);
    torch::NoGradGuard                 noGrad;
    const c10::ScalarType              precision = agcl::ParsePrecision(this->GetPrecision(), device.type());
    std::optional<agcl::AutocastGuard> autocast; // float32: autocast left as it is
    if (precision != c10::kFloat)
      autocast.emplace(device.type(), precision);
    std::vector<at::Tensor>    probability;
    const std::vector<int64_t> size{ image.size(2), image.size(3) };
    for (int64_t start = 0; start < n; start += this->GetBatchSize())
    {
      const int64_t    end = std::min<int64_t>(n, start + this->GetBatchSize());
      const at::Tensor logits =
        // Features in float32 (an encoder under autocast gives them in its lower precision).
        m_Decoder->forward(low.slice(0, start, end).to(device, at::kFloat),
                           high.slice(0, start, end).to(device, at::kFloat),
                           size,
                           stem.defined() ? stem.slice(0, start, end).to(device, at::kFloat) : at::Tensor());
      probability.push_back(agcl::ASPPDecoderImpl::OrganProbability(logits).to(at::kFloat));
    }
    output->SetTensor("probability", torch::cat(probability));
  });
}

void
ASPPDecoderFilter::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "Decoder: " << (m_Decoder.is_empty() ? "none" : "set") << std::endl;
}

} // namespace itk
