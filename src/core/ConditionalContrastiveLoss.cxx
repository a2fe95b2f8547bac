/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/ConditionalContrastiveLoss.h"

#include "Checks.h"

#include <torch/torch.h>

#include <cmath>

namespace agcl {

ConditionalContrastiveLossImpl::ConditionalContrastiveLossImpl(ConditionalContrastiveLossOptions options)
  : m_Options(options)
{
  detail::Require(std::isfinite(m_Options.temperature()) && m_Options.temperature() > 0,
                  "ConditionalContrastiveLoss",
                  "temperature must be positive and finite, got " + std::to_string(m_Options.temperature()));
}

torch::Tensor
ConditionalContrastiveLossImpl::forward(const torch::Tensor & embeddings, const torch::Tensor & labels)
{
  const int64_t rows = embeddings.defined() && embeddings.dim() == 2 ? embeddings.size(0) : 0;
  const auto [total, anchors] = anchorSum(embeddings, labels, 0, rows);
  // Mean over anchors with positives; 0 (connected to the graph) when there are none.
  return total / anchors.clamp_min(1).to(total.dtype());
}

std::pair<torch::Tensor, torch::Tensor>
ConditionalContrastiveLossImpl::anchorSum(const torch::Tensor & embeddings,
                                          const torch::Tensor & labels,
                                          int64_t               first,
                                          int64_t               count)
{
  const std::string where = "ConditionalContrastiveLoss";
  detail::RequireFloating(embeddings, 2, where, "embeddings", "[2N, d] (two views per patch)");
  detail::Require(embeddings.size(0) >= 2,
                  where,
                  "embeddings has shape " + detail::ShapeText(embeddings) + "; expected [2N, d] with 2N >= 2");
  detail::Require(labels.defined() && labels.dim() == 1 && labels.size(0) == embeddings.size(0),
                  where,
                  "labels has shape " + detail::ShapeText(labels) + "; expected [" +
                    std::to_string(embeddings.size(0)) + "] (one label per embedding row)");
  detail::Require(at::isIntegralType(labels.scalar_type(), /*includeBool=*/false),
                  where,
                  "labels has dtype " + std::string(c10::toString(labels.scalar_type())) +
                    "; expected an integer dtype");
  detail::Require(labels.device() == embeddings.device(), where, "labels and embeddings are on different devices");
  if (m_Options.check_finite())
  {
    detail::RequireFinite(embeddings, where, "embeddings");
  }

  const int64_t rows = embeddings.size(0);
  detail::Require(first >= 0 && count >= 0 && first + count <= rows,
                  where,
                  "anchor rows [" + std::to_string(first) + ", " + std::to_string(first + count) +
                    ") are not within the " + std::to_string(rows) + " embedding rows");
  // Similarities of the anchors to every row; under autocast the matmul may run in bf16: cast
  // the result up.
  torch::Tensor similarity = torch::matmul(embeddings.narrow(0, first, count), embeddings.t());
  if (similarity.scalar_type() != torch::kDouble)
  {
    similarity = similarity.to(torch::kFloat);
  }
  similarity = similarity / m_Options.temperature();

  // Anchor k's own row is column first + k.
  const torch::Tensor self =
    torch::eye(rows, torch::TensorOptions().dtype(torch::kBool).device(similarity.device())).narrow(0, first, count);
  // log sum_{j != k} exp(s_kj), stable (logsumexp subtracts the row maximum).
  const torch::Tensor logDenominator =
    torch::logsumexp(similarity.masked_fill(self, -std::numeric_limits<double>::infinity()), 1, /*keepdim=*/true);
  const torch::Tensor logProbability = similarity - logDenominator;

  const torch::Tensor positives =
    labels.narrow(0, first, count).unsqueeze(1).eq(labels.unsqueeze(0)).logical_and(self.logical_not());
  const torch::Tensor positiveCount = positives.sum(1);
  const torch::Tensor hasPositive = positiveCount.gt(0);
  const torch::Tensor meanLogProbability =
    logProbability.masked_fill(positives.logical_not(), 0.0).sum(1) / positiveCount.clamp_min(1).to(similarity.dtype());

  const torch::Tensor anchors = hasPositive.sum();
  const torch::Tensor total = -(meanLogProbability.masked_fill(hasPositive.logical_not(), 0.0)).sum();
  return { total, anchors };
}

} // namespace agcl
