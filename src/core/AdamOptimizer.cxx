/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/AdamOptimizer.h"

#include "agcl/ModelBundle.h"

#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace agcl {

AdamOptimizer::AdamOptimizer(std::vector<at::Tensor> parameters, AdamOptions options)
  : m_Parameters(std::move(parameters))
  , m_Options(options)
{
  for (const auto & p : m_Parameters)
  {
    m_First.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve).detach());
    m_Second.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve).detach());
  }
  m_Scales.assign(m_Parameters.size(), 1.0);
}

void
AdamOptimizer::SetLearningRateScales(std::vector<double> scales)
{
  if (scales.size() != m_Parameters.size())
    throw std::invalid_argument("AdamOptimizer: " + std::to_string(scales.size()) + " learning-rate scales for " +
                                std::to_string(m_Parameters.size()) + " parameters");
  for (const double scale : scales)
    if (!(scale >= 0.0) || !std::isfinite(scale))
      throw std::invalid_argument("AdamOptimizer: learning-rate scale " + std::to_string(scale) +
                                  "; expected a finite value >= 0");
  m_Scales = std::move(scales);
}

void
AdamOptimizer::ZeroGrad()
{
  for (auto & p : m_Parameters)
  {
    if (p.grad().defined())
    {
      p.mutable_grad().reset();
    }
  }
}

void
AdamOptimizer::Step(double rate)
{
  torch::NoGradGuard noGrad;
  ++m_Step;
  const double beta1 = m_Options.beta1, beta2 = m_Options.beta2;
  const double correction1 = 1.0 - std::pow(beta1, static_cast<double>(m_Step));
  const double correction2 = 1.0 - std::pow(beta2, static_cast<double>(m_Step));
  const bool   multiTensor =
    m_Options.kernels == AdamOptions::Kernels::MultiTensor ||
    (m_Options.kernels == AdamOptions::Kernels::Automatic && !m_Parameters.empty() && m_Parameters.front().is_cuda());
  if (multiTensor)
  {
    StepMultiTensor(rate, correction1, correction2);
    return;
  }
  for (size_t i = 0; i < m_Parameters.size(); ++i)
  {
    at::Tensor & p = m_Parameters[i];
    if (!p.grad().defined())
    {
      continue;
    }
    const double     lr = rate * m_Scales[i];
    const at::Tensor g = p.grad();
    if (m_Options.weight_decay != 0.0)
    {
      p.mul_(1.0 - lr * m_Options.weight_decay);
    }
    m_First[i].mul_(beta1).add_(g, 1.0 - beta1);
    m_Second[i].mul_(beta2).addcmul_(g, g, 1.0 - beta2);
    const at::Tensor denominator = (m_Second[i].sqrt() / std::sqrt(correction2)).add_(m_Options.eps);
    p.addcdiv_(m_First[i], denominator, -lr / correction1);
  }
}

void
AdamOptimizer::StepMultiTensor(double rate, double correction1, double correction2)
{
  // The loop's operations, each over all parameters with a gradient at once. ATen's foreach
  // kernels take the fused multi-tensor path when every tensor is dense, on one device, with one
  // dtype; otherwise they loop over the tensors with the ordinary kernels: same values either way.
  std::vector<at::Tensor> parameters, gradients, first, second;
  std::vector<at::Scalar> decay, steps;
  for (size_t i = 0; i < m_Parameters.size(); ++i)
  {
    if (!m_Parameters[i].grad().defined())
    {
      continue;
    }
    const double lr = rate * m_Scales[i];
    parameters.push_back(m_Parameters[i]);
    gradients.push_back(m_Parameters[i].grad());
    first.push_back(m_First[i]);
    second.push_back(m_Second[i]);
    decay.emplace_back(1.0 - lr * m_Options.weight_decay);
    steps.emplace_back(-lr / correction1);
  }
  if (parameters.empty())
  {
    return;
  }
  const double beta1 = m_Options.beta1, beta2 = m_Options.beta2;
  if (m_Options.weight_decay != 0.0)
  {
    at::_foreach_mul_(parameters, decay);
  }
  at::_foreach_mul_(first, beta1);
  at::_foreach_add_(first, gradients, 1.0 - beta1);
  at::_foreach_mul_(second, beta2);
  at::_foreach_addcmul_(second, gradients, gradients, 1.0 - beta2);
  std::vector<at::Tensor> denominator = at::_foreach_sqrt(second);
  at::_foreach_div_(denominator, std::sqrt(correction2));
  at::_foreach_add_(denominator, m_Options.eps);
  at::_foreach_addcdiv_(parameters, first, denominator, steps);
}

void
AdamOptimizer::Save(ModelBundle & bundle, const std::string & prefix) const
{
  bundle.Add(prefix + ".step", torch::tensor({ m_Step }, torch::kLong));
  for (size_t i = 0; i < m_Parameters.size(); ++i)
  {
    bundle.Add(prefix + "." + std::to_string(i) + ".m", m_First[i]);
    bundle.Add(prefix + "." + std::to_string(i) + ".v", m_Second[i]);
  }
}

void
AdamOptimizer::Load(const ModelBundle & bundle, const std::string & prefix)
{
  torch::NoGradGuard noGrad;
  const at::Tensor   step = bundle.Get(prefix + ".step");
  if (step.numel() != 1 || step.scalar_type() != torch::kLong)
  {
    throw ModelBundleError("optimizer state '" + prefix + ".step': expected one int64");
  }
  for (size_t i = 0; i < m_Parameters.size(); ++i)
  {
    for (auto [suffix, target] : { std::pair{ ".m", &m_First[i] }, std::pair{ ".v", &m_Second[i] } })
    {
      const std::string  name = prefix + "." + std::to_string(i) + suffix;
      const at::Tensor & stored = bundle.Get(name);
      if (stored.sizes() != target->sizes())
      {
        throw ModelBundleError("optimizer state '" + name + "': shape does not match its parameter");
      }
      target->copy_(stored);
    }
  }
  m_Step = step.item<int64_t>();
}

} // namespace agcl
