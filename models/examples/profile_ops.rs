//! Micro-benchmark of the candle ops the models use (dev aid).
use candle_core::{Device, Tensor, D};
use std::time::Instant;

fn time<F: FnMut() -> candle_core::Result<Tensor>>(
    name: &str,
    flops: f64,
    mut f: F,
) -> candle_core::Result<()> {
    f()?;
    let t = Instant::now();
    let n = 5;
    for _ in 0..n {
        f()?;
    }
    let dt = t.elapsed().as_secs_f64() / n as f64;
    println!("{name}: {:.2} ms, {:.1} GFLOP/s", dt * 1e3, flops / dt / 1e9);
    Ok(())
}

fn main() -> candle_core::Result<()> {
    let d = Device::Cpu;
    let x3 = Tensor::randn(0f32, 1., (32, 256, 384), &d)?;
    let x2 = x3.reshape((8192, 384))?;
    let w = Tensor::randn(0f32, 1., (1536, 384), &d)?;
    let fl = 2.0 * 8192.0 * 384.0 * 1536.0;
    time("2d x.matmul(w.t())", fl, || x2.matmul(&w.t()?))?;
    time("2d x.matmul(w.t().contiguous())", fl, || x2.matmul(&w.t()?.contiguous()?))?;
    time("3d broadcast_matmul(w.t())", fl, || x3.broadcast_matmul(&w.t()?))?;
    let lin = candle_nn::Linear::new(w.clone(), None);
    time("3d candle_nn::Linear", fl, || candle_core::Module::forward(&lin, &x3))?;
    let y = Tensor::randn(0f32, 1., (8192, 1536), &d)?;
    time("gelu_erf 8192x1536", 0.0, || y.gelu_erf())?;
    time("gelu(tanh) 8192x1536", 0.0, || y.gelu())?;
    let q = Tensor::randn(0f32, 1., (32, 12, 256, 32), &d)?;
    let fl = 2.0 * 32.0 * 12.0 * 256.0 * 256.0 * 32.0;
    time("attn q.matmul(k.t())", fl, || q.matmul(&q.t()?))?;
    let s = Tensor::randn(0f32, 1., (32, 12, 256, 256), &d)?;
    time("softmax generic", 0.0, || candle_nn::ops::softmax(&s, D::Minus1))?;
    time("softmax_last_dim", 0.0, || candle_nn::ops::softmax_last_dim(&s))?;
    // smollm-like
    let h = Tensor::randn(0f32, 1., (2048, 576), &d)?;
    let wo = Tensor::randn(0f32, 1., (49152, 576), &d)?;
    let fl = 2.0 * 2048.0 * 576.0 * 49152.0;
    time("lm head 2048x576 @ 576x49152", fl, || h.matmul(&wo.t()?))?;
    let w2 = Tensor::randn(0f32, 1., (1536, 576), &d)?;
    let fl = 2.0 * 2048.0 * 576.0 * 1536.0;
    time("f32 2048x576 @ 576x1536", fl, || h.matmul(&w2.t()?))?;
    for dt in [candle_core::quantized::GgmlDType::Q4_1, candle_core::quantized::GgmlDType::Q8_0] {
        let qt = candle_core::quantized::QTensor::quantize(&w2, dt)?;
        let qm = candle_core::quantized::QMatMul::from_qtensor(qt)?;
        time(&format!("{dt:?} 2048x576 @ 576x1536"), fl, || candle_core::Module::forward(&qm, &h))?;
    }
    Ok(())
}
