;; SIMD kernels over tfjs-wasm's own memory (imported), for the fused kernels of
;; native_fused.ts: each works in place on tensors at byte offsets of that heap, one pass per
;; row where the stock ops make several, four floats per instruction. Rows are `d` floats with
;; d a multiple of 4 (the caller checks). simd_kernels_wasm.ts holds this compiled (base64);
;; `deno task simd` rebuilds it and tests/simd_kernels_test.ts checks the two agree.
(module
  (import "env" "memory" (memory 1))

  ;; v[0] + v[1] + v[2] + v[3]
  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; Layer norm of `rows` rows of x (+ r when flags & 1), the sum also written to `sum` when
  ;; flags & 2: c = s - mean(s), inv = 1 / sqrt(mean(c^2) + eps), y = c * inv * g + b.
  ;; y holds s, then c, between the passes.
  (func (export "layerNorm")
    (param $x i32) (param $r i32) (param $sum i32) (param $y i32) (param $g i32) (param $b i32)
    (param $rows i32) (param $d i32) (param $flags i32) (param $eps f32)
    (local $row i32) (local $j i32) (local $bytes i32) (local $fd f32)
    (local $acc v128) (local $v v128) (local $mean v128) (local $inv v128)
    (local.set $bytes (i32.shl (local.get $d) (i32.const 2)))
    (local.set $fd (f32.convert_i32_u (local.get $d)))
    (block $done (loop $rowLoop
      (br_if $done (i32.ge_u (local.get $row) (local.get $rows)))
      ;; s = x (+ r) into y (and sum); its total
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (block $e1 (loop $l1
        (br_if $e1 (i32.ge_u (local.get $j) (local.get $bytes)))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $j))))
        (if (i32.and (local.get $flags) (i32.const 1))
          (then (local.set $v
            (f32x4.add (local.get $v) (v128.load (i32.add (local.get $r) (local.get $j)))))))
        (if (i32.and (local.get $flags) (i32.const 2))
          (then (v128.store (i32.add (local.get $sum) (local.get $j)) (local.get $v))))
        (v128.store (i32.add (local.get $y) (local.get $j)) (local.get $v))
        (local.set $acc (f32x4.add (local.get $acc) (local.get $v)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l1)))
      (local.set $mean (f32x4.splat (f32.div (call $hsum (local.get $acc)) (local.get $fd))))
      ;; c = s - mean into y; the sum of squares
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (block $e2 (loop $l2
        (br_if $e2 (i32.ge_u (local.get $j) (local.get $bytes)))
        (local.set $v
          (f32x4.sub (v128.load (i32.add (local.get $y) (local.get $j))) (local.get $mean)))
        (v128.store (i32.add (local.get $y) (local.get $j)) (local.get $v))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $v) (local.get $v))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l2)))
      (local.set $inv (f32x4.splat (f32.div (f32.const 1)
        (f32.sqrt (f32.add (f32.div (call $hsum (local.get $acc)) (local.get $fd))
          (local.get $eps))))))
      ;; y = c * inv * g + b
      (local.set $j (i32.const 0))
      (block $e3 (loop $l3
        (br_if $e3 (i32.ge_u (local.get $j) (local.get $bytes)))
        (v128.store (i32.add (local.get $y) (local.get $j))
          (f32x4.add
            (f32x4.mul
              (f32x4.mul (v128.load (i32.add (local.get $y) (local.get $j))) (local.get $inv))
              (v128.load (i32.add (local.get $g) (local.get $j))))
            (v128.load (i32.add (local.get $b) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l3)))
      (local.set $x (i32.add (local.get $x) (local.get $bytes)))
      (local.set $r (i32.add (local.get $r) (local.get $bytes)))
      (local.set $sum (i32.add (local.get $sum) (local.get $bytes)))
      (local.set $y (i32.add (local.get $y) (local.get $bytes)))
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $rowLoop))))

  ;; Layer norm's backward over `rows` rows of a = x (+ r when flags & 1), its statistics
  ;; recomputed: with c = a - mean, inv = 1 / sqrt(mean(c^2) + eps), dn = dy * g,
  ;; ma = mean(dn), mc = mean(dn * c):
  ;;   dx = (dn * inv - c * inv^3 * mc) - inv * ma   (+ ds when flags & 2),
  ;;   dgain = sum over rows of (dy * c) * inv,  dbias = sum over rows of dy.
  ;; dx holds a, then c, between the passes.
  (func (export "layerNormGrad")
    (param $dy i32) (param $x i32) (param $r i32) (param $ds i32) (param $g i32) (param $dx i32)
    (param $dgain i32) (param $dbias i32) (param $rows i32) (param $d i32) (param $flags i32)
    (param $eps f32)
    (local $row i32) (local $j i32) (local $bytes i32) (local $fd f32) (local $inv f32)
    (local $acc v128) (local $acc2 v128) (local $v v128) (local $c v128) (local $dyv v128)
    (local $dn v128) (local $mean v128) (local $invv v128) (local $slope v128) (local $shift v128)
    (local.set $bytes (i32.shl (local.get $d) (i32.const 2)))
    (local.set $fd (f32.convert_i32_u (local.get $d)))
    (local.set $j (i32.const 0))
    (block $ez (loop $lz
      (br_if $ez (i32.ge_u (local.get $j) (local.get $bytes)))
      (v128.store (i32.add (local.get $dgain) (local.get $j)) (v128.const f32x4 0 0 0 0))
      (v128.store (i32.add (local.get $dbias) (local.get $j)) (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br $lz)))
    (block $done (loop $rowLoop
      (br_if $done (i32.ge_u (local.get $row) (local.get $rows)))
      ;; a = x (+ r) into dx; its total
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (block $e1 (loop $l1
        (br_if $e1 (i32.ge_u (local.get $j) (local.get $bytes)))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $j))))
        (if (i32.and (local.get $flags) (i32.const 1))
          (then (local.set $v
            (f32x4.add (local.get $v) (v128.load (i32.add (local.get $r) (local.get $j)))))))
        (v128.store (i32.add (local.get $dx) (local.get $j)) (local.get $v))
        (local.set $acc (f32x4.add (local.get $acc) (local.get $v)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l1)))
      (local.set $mean (f32x4.splat (f32.div (call $hsum (local.get $acc)) (local.get $fd))))
      ;; c = a - mean into dx; the sum of squares
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (block $e2 (loop $l2
        (br_if $e2 (i32.ge_u (local.get $j) (local.get $bytes)))
        (local.set $v
          (f32x4.sub (v128.load (i32.add (local.get $dx) (local.get $j))) (local.get $mean)))
        (v128.store (i32.add (local.get $dx) (local.get $j)) (local.get $v))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $v) (local.get $v))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l2)))
      (local.set $inv (f32.div (f32.const 1)
        (f32.sqrt (f32.add (f32.div (call $hsum (local.get $acc)) (local.get $fd))
          (local.get $eps)))))
      (local.set $invv (f32x4.splat (local.get $inv)))
      ;; mean(dn), mean(dn * c); dgain += (dy * c) * inv, dbias += dy
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $acc2 (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (block $e3 (loop $l3
        (br_if $e3 (i32.ge_u (local.get $j) (local.get $bytes)))
        (local.set $dyv (v128.load (i32.add (local.get $dy) (local.get $j))))
        (local.set $c (v128.load (i32.add (local.get $dx) (local.get $j))))
        (local.set $dn (f32x4.mul (local.get $dyv) (v128.load (i32.add (local.get $g) (local.get $j)))))
        (local.set $acc (f32x4.add (local.get $acc) (local.get $dn)))
        (local.set $acc2 (f32x4.add (local.get $acc2) (f32x4.mul (local.get $dn) (local.get $c))))
        (v128.store (i32.add (local.get $dgain) (local.get $j))
          (f32x4.add (v128.load (i32.add (local.get $dgain) (local.get $j)))
            (f32x4.mul (f32x4.mul (local.get $dyv) (local.get $c)) (local.get $invv))))
        (v128.store (i32.add (local.get $dbias) (local.get $j))
          (f32x4.add (v128.load (i32.add (local.get $dbias) (local.get $j))) (local.get $dyv)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l3)))
      (local.set $shift (f32x4.splat
        (f32.mul (local.get $inv) (f32.div (call $hsum (local.get $acc)) (local.get $fd)))))
      (local.set $slope (f32x4.splat
        (f32.mul (f32.mul (f32.mul (local.get $inv) (local.get $inv)) (local.get $inv))
          (f32.div (call $hsum (local.get $acc2)) (local.get $fd)))))
      ;; dx = (dn * inv - c * slope) - shift (+ ds)
      (local.set $j (i32.const 0))
      (block $e4 (loop $l4
        (br_if $e4 (i32.ge_u (local.get $j) (local.get $bytes)))
        (local.set $dn (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $j)))
          (v128.load (i32.add (local.get $g) (local.get $j)))))
        (local.set $v (f32x4.sub
          (f32x4.sub (f32x4.mul (local.get $dn) (local.get $invv))
            (f32x4.mul (v128.load (i32.add (local.get $dx) (local.get $j))) (local.get $slope)))
          (local.get $shift)))
        (if (i32.and (local.get $flags) (i32.const 2))
          (then (local.set $v
            (f32x4.add (local.get $v) (v128.load (i32.add (local.get $ds) (local.get $j)))))))
        (v128.store (i32.add (local.get $dx) (local.get $j)) (local.get $v))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l4)))
      (local.set $dy (i32.add (local.get $dy) (local.get $bytes)))
      (local.set $x (i32.add (local.get $x) (local.get $bytes)))
      (local.set $r (i32.add (local.get $r) (local.get $bytes)))
      (local.set $ds (i32.add (local.get $ds) (local.get $bytes)))
      (local.set $dx (i32.add (local.get $dx) (local.get $bytes)))
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $rowLoop))))

  ;; GELU of a product plus bias over `rows` rows of n floats (n a multiple of 4): with
  ;; u = z + b (b broadcast over rows) and s = sigmoid(a u) = 1 / (1 + exp(-a u)), y = u s and
  ;; its slope d = dy/du = s + a y (1 - s), kept for the gradient, into `s`. y may be z. Per
  ;; row: u into y and -a u (at most 87, so exp stays finite) into s; s to exp(s) by
  ;; $expShift; then d and y in place.
  (func (export "biasGelu")
    (param $z i32) (param $b i32) (param $y i32) (param $s i32) (param $rows i32) (param $n i32)
    (param $a f32)
    (local $row i32) (local $j i32) (local $bytes i32) (local $u v128) (local $e v128)
    (local $na v128) (local $av v128) (local $cap v128) (local $one v128)
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $av (f32x4.splat (local.get $a)))
    (local.set $na (f32x4.splat (f32.neg (local.get $a))))
    (local.set $cap (v128.const f32x4 87 87 87 87))
    (local.set $one (v128.const f32x4 1 1 1 1))
    (block $done (loop $rowLoop
      (br_if $done (i32.ge_u (local.get $row) (local.get $rows)))
      (local.set $j (i32.const 0))
      (block $e1 (loop $l1
        (br_if $e1 (i32.ge_u (local.get $j) (local.get $bytes)))
        (local.set $u (f32x4.add (v128.load (i32.add (local.get $z) (local.get $j)))
          (v128.load (i32.add (local.get $b) (local.get $j)))))
        (v128.store (i32.add (local.get $y) (local.get $j)) (local.get $u))
        (v128.store (i32.add (local.get $s) (local.get $j))
          (f32x4.min (f32x4.mul (local.get $u) (local.get $na)) (local.get $cap)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l1)))
      (drop (call $expShift (local.get $s) (local.get $s) (local.get $bytes) (f32.const 0)))
      (local.set $j (i32.const 0))
      (block $e2 (loop $l2
        (br_if $e2 (i32.ge_u (local.get $j) (local.get $bytes)))
        (local.set $e (f32x4.div (local.get $one)
          (f32x4.add (local.get $one) (v128.load (i32.add (local.get $s) (local.get $j))))))
        (local.set $u (f32x4.mul (v128.load (i32.add (local.get $y) (local.get $j))) (local.get $e)))
        (v128.store (i32.add (local.get $y) (local.get $j)) (local.get $u))
        (v128.store (i32.add (local.get $s) (local.get $j))
          (f32x4.relaxed_madd (f32x4.mul (local.get $u) (local.get $av))
            (f32x4.sub (local.get $one) (local.get $e)) (local.get $e)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l2)))
      (local.set $z (i32.add (local.get $z) (local.get $bytes)))
      (local.set $y (i32.add (local.get $y) (local.get $bytes)))
      (local.set $s (i32.add (local.get $s) (local.get $bytes)))
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $rowLoop))))

  ;; GELU's gradient and its bias's, over `rows` rows of n floats (n a multiple of 4):
  ;; out = g d (d the slope biasGelu kept) and colsum[j] = the sum over rows of out[., j].
  (func (export "geluGradBias")
    (param $g i32) (param $d i32) (param $out i32) (param $colsum i32) (param $rows i32)
    (param $n i32)
    (local $row i32) (local $j i32) (local $bytes i32) (local $v v128)
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (memory.fill (local.get $colsum) (i32.const 0) (local.get $bytes))
    (block $done (loop $rowLoop
      (br_if $done (i32.ge_u (local.get $row) (local.get $rows)))
      (local.set $j (i32.const 0))
      (block $e (loop $l
        (br_if $e (i32.ge_u (local.get $j) (local.get $bytes)))
        (local.set $v (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $j)))
          (v128.load (i32.add (local.get $d) (local.get $j)))))
        (v128.store (i32.add (local.get $out) (local.get $j)) (local.get $v))
        (v128.store (i32.add (local.get $colsum) (local.get $j))
          (f32x4.add (v128.load (i32.add (local.get $colsum) (local.get $j))) (local.get $v)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l)))
      (local.set $g (i32.add (local.get $g) (local.get $bytes)))
      (local.set $d (i32.add (local.get $d) (local.get $bytes)))
      (local.set $out (i32.add (local.get $out) (local.get $bytes)))
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $rowLoop))))

  ;; AdamW over n values of one parameter p with gradient g and moments m, v (new moments
  ;; into m2, v2; m2 may be m, v2 may be v): with gs = g scale (the clipping factor),
  ;; m' = b1 m + (1 - b1) gs, v' = b2 v + (1 - b2) gs^2,
  ;; out = p decay - m' step / (sqrt(v') + eps).
  (func (export "adamw")
    (param $p i32) (param $g i32) (param $out i32) (param $m i32) (param $v i32) (param $m2 i32)
    (param $v2 i32) (param $n i32) (param $decay f32) (param $b1 f32) (param $b2 f32)
    (param $scale f32) (param $step f32) (param $eps f32)
    (local $j i32) (local $bytes i32) (local $vec i32)
    (local $gs v128) (local $mv v128) (local $vv v128)
    (local $decayV v128) (local $b1V v128) (local $c1V v128) (local $b2V v128) (local $c2V v128)
    (local $scaleV v128) (local $stepV v128) (local $epsV v128)
    (local $gf f32) (local $mf f32) (local $vf f32)
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vec (i32.and (local.get $bytes) (i32.const -16)))
    (local.set $decayV (f32x4.splat (local.get $decay)))
    (local.set $b1V (f32x4.splat (local.get $b1)))
    (local.set $c1V (f32x4.splat (f32.sub (f32.const 1) (local.get $b1))))
    (local.set $b2V (f32x4.splat (local.get $b2)))
    (local.set $c2V (f32x4.splat (f32.sub (f32.const 1) (local.get $b2))))
    (local.set $scaleV (f32x4.splat (local.get $scale)))
    (local.set $stepV (f32x4.splat (local.get $step)))
    (local.set $epsV (f32x4.splat (local.get $eps)))
    (block $e (loop $l
      (br_if $e (i32.ge_u (local.get $j) (local.get $vec)))
      (local.set $gs (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $j))) (local.get $scaleV)))
      (local.set $mv (f32x4.add (f32x4.mul (local.get $b1V) (v128.load (i32.add (local.get $m) (local.get $j))))
        (f32x4.mul (local.get $c1V) (local.get $gs))))
      (local.set $vv (f32x4.add (f32x4.mul (local.get $b2V) (v128.load (i32.add (local.get $v) (local.get $j))))
        (f32x4.mul (local.get $c2V) (f32x4.mul (local.get $gs) (local.get $gs)))))
      (v128.store (i32.add (local.get $m2) (local.get $j)) (local.get $mv))
      (v128.store (i32.add (local.get $v2) (local.get $j)) (local.get $vv))
      (v128.store (i32.add (local.get $out) (local.get $j))
        (f32x4.sub (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $j))) (local.get $decayV))
          (f32x4.div (f32x4.mul (local.get $mv) (local.get $stepV))
            (f32x4.add (f32x4.sqrt (local.get $vv)) (local.get $epsV)))))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br $l)))
    (block $et (loop $lt
      (br_if $et (i32.ge_u (local.get $j) (local.get $bytes)))
      (local.set $gf (f32.mul (f32.load (i32.add (local.get $g) (local.get $j))) (local.get $scale)))
      (local.set $mf (f32.add (f32.mul (local.get $b1) (f32.load (i32.add (local.get $m) (local.get $j))))
        (f32.mul (f32.sub (f32.const 1) (local.get $b1)) (local.get $gf))))
      (local.set $vf (f32.add (f32.mul (local.get $b2) (f32.load (i32.add (local.get $v) (local.get $j))))
        (f32.mul (f32.sub (f32.const 1) (local.get $b2)) (f32.mul (local.get $gf) (local.get $gf)))))
      (f32.store (i32.add (local.get $m2) (local.get $j)) (local.get $mf))
      (f32.store (i32.add (local.get $v2) (local.get $j)) (local.get $vf))
      (f32.store (i32.add (local.get $out) (local.get $j))
        (f32.sub (f32.mul (f32.load (i32.add (local.get $p) (local.get $j))) (local.get $decay))
          (f32.div (f32.mul (local.get $mf) (local.get $step))
            (f32.add (f32.sqrt (local.get $vf)) (local.get $eps)))))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $lt))))

  ;; exp(x) for x <= 0, four lanes: 2^n * p(r) with n = round(x / ln 2) (by the 1.5 * 2^23
  ;; shifter, whose low mantissa bits are then n), r = x - n ln 2 (ln 2 split in two for
  ;; accuracy) and p the degree-6 Taylor polynomial (relative error about 1e-7 on
  ;; |r| <= ln 2 / 2); lanes below -87 give 0 (as exp does in float32 for masked scores).
  (func $exp4 (param $x v128) (result v128)
    (local $t v128) (local $n v128) (local $r v128) (local $p v128)
    (local.set $t (f32x4.add
      (f32x4.mul (local.get $x) (v128.const f32x4 1.442695041 1.442695041 1.442695041 1.442695041))
      (v128.const f32x4 12582912 12582912 12582912 12582912)))
    (local.set $n (f32x4.sub (local.get $t) (v128.const f32x4 12582912 12582912 12582912 12582912)))
    (local.set $r (f32x4.sub
      (f32x4.sub (local.get $x)
        (f32x4.mul (local.get $n) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375)))
      (f32x4.mul (local.get $n)
        (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    (local.set $p (v128.const f32x4 1.3888889e-3 1.3888889e-3 1.3888889e-3 1.3888889e-3))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 8.3333333e-3 8.3333333e-3 8.3333333e-3 8.3333333e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 4.1666667e-2 4.1666667e-2 4.1666667e-2 4.1666667e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 0.16666667 0.16666667 0.16666667 0.16666667)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 0.5 0.5 0.5 0.5)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1 1 1 1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1 1 1 1)))
    (v128.bitselect
      (f32x4.mul (local.get $p)
        (i32x4.shl
          (i32x4.add (i32x4.sub (local.get $t) (v128.const i32x4 0x4B400000 0x4B400000 0x4B400000 0x4B400000))
            (v128.const i32x4 127 127 127 127))
          (i32.const 23)))
      (v128.const f32x4 0 0 0 0)
      (f32x4.ge (local.get $x) (v128.const f32x4 -87 -87 -87 -87))))

  ;; dst = exp(src - m) over `bytes` bytes (a multiple of 4; dst may be src), and its sum:
  ;; $exp4's arithmetic written out with its constants in locals, set once a call, and with
  ;; fused multiply-adds (relaxed SIMD's madd: fused where the CPU has FMA). Inside a loop the
  ;; engine rebuilds every v128.const at each use, which made a call of $exp4 per four values
  ;; about twice as slow; the madds take off another quarter or more. Lanes below -87 give 0;
  ;; x up to 87 stays finite.
  (func $expShift (param $src i32) (param $dst i32) (param $bytes i32) (param $m f32) (result f32)
    (local $j i32) (local $vec i32) (local $x1 f32) (local $sum f32)
    (local $x v128) (local $t v128) (local $n v128) (local $r v128) (local $p v128)
    (local $sv v128) (local $mv v128)
    (local $log2e v128) (local $shift v128) (local $negLn2hi v128) (local $negLn2lo v128)
    (local $c6 v128) (local $c5 v128) (local $c4 v128) (local $c3 v128) (local $c2 v128)
    (local $one v128) (local $bias v128) (local $floor v128)
    (local.set $log2e (v128.const f32x4 1.442695041 1.442695041 1.442695041 1.442695041))
    (local.set $shift (v128.const f32x4 12582912 12582912 12582912 12582912))
    (local.set $negLn2hi (v128.const f32x4 -0.693359375 -0.693359375 -0.693359375 -0.693359375))
    (local.set $negLn2lo (v128.const f32x4 2.12194440e-4 2.12194440e-4 2.12194440e-4 2.12194440e-4))
    (local.set $c6 (v128.const f32x4 1.3888889e-3 1.3888889e-3 1.3888889e-3 1.3888889e-3))
    (local.set $c5 (v128.const f32x4 8.3333333e-3 8.3333333e-3 8.3333333e-3 8.3333333e-3))
    (local.set $c4 (v128.const f32x4 4.1666667e-2 4.1666667e-2 4.1666667e-2 4.1666667e-2))
    (local.set $c3 (v128.const f32x4 0.16666667 0.16666667 0.16666667 0.16666667))
    (local.set $c2 (v128.const f32x4 0.5 0.5 0.5 0.5))
    (local.set $one (v128.const f32x4 1 1 1 1))
    (local.set $bias (v128.const i32x4 0x4B3FFF81 0x4B3FFF81 0x4B3FFF81 0x4B3FFF81))
    (local.set $floor (v128.const f32x4 -87 -87 -87 -87))
    (local.set $mv (f32x4.splat (local.get $m)))
    (local.set $vec (i32.and (local.get $bytes) (i32.const -16)))
    (block $e (loop $l
      (br_if $e (i32.ge_u (local.get $j) (local.get $vec)))
      (local.set $x (f32x4.sub (v128.load (i32.add (local.get $src) (local.get $j))) (local.get $mv)))
      (local.set $t (f32x4.relaxed_madd (local.get $x) (local.get $log2e) (local.get $shift)))
      (local.set $n (f32x4.sub (local.get $t) (local.get $shift)))
      (local.set $r (f32x4.relaxed_madd (local.get $n) (local.get $negLn2hi) (local.get $x)))
      (local.set $r (f32x4.relaxed_madd (local.get $n) (local.get $negLn2lo) (local.get $r)))
      (local.set $p (f32x4.relaxed_madd (local.get $c6) (local.get $r) (local.get $c5)))
      (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r) (local.get $c4)))
      (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r) (local.get $c3)))
      (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r) (local.get $c2)))
      (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r) (local.get $one)))
      (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r) (local.get $one)))
      ;; 2^n: n sits in t's low mantissa bits; t - (shifter - 127), moved to the exponent
      (local.set $p (v128.and
        (f32x4.mul (local.get $p)
          (i32x4.shl (i32x4.sub (local.get $t) (local.get $bias)) (i32.const 23)))
        (f32x4.ge (local.get $x) (local.get $floor))))
      (v128.store (i32.add (local.get $dst) (local.get $j)) (local.get $p))
      (local.set $sv (f32x4.add (local.get $sv) (local.get $p)))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br $l)))
    (local.set $sum (call $hsum (local.get $sv)))
    (block $et (loop $lt
      (br_if $et (i32.ge_u (local.get $j) (local.get $bytes)))
      (local.set $x1 (f32x4.extract_lane 0 (call $exp4 (f32x4.splat
        (f32.sub (f32.load (i32.add (local.get $src) (local.get $j))) (local.get $m))))))
      (f32.store (i32.add (local.get $dst) (local.get $j)) (local.get $x1))
      (local.set $sum (f32.add (local.get $sum) (local.get $x1)))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $lt)))
    (local.get $sum))

  ;; Causal softmax over `blocks` [t, t] score blocks in place (block k belongs to sample
  ;; k / heads, whose key mask row of t floats is at mask + 4 t (k / heads)): row i over the
  ;; keys j <= i with mask 1, exp(s - max) / sum; every other entry 0. Every row must see at
  ;; least one key (the caller checks: key 0 of each sample unmasked). The chunk of four that
  ;; holds the diagonal is done with a lane mask (j <= i), not one key at a time; only keys past
  ;; the row's last whole chunk are. The first pass sets the keys a row does not see to -inf
  ;; (so $expShift makes them 0) while it finds the maximum.
  (func (export "softmaxCausal")
    (param $s i32) (param $mask i32) (param $blocks i32) (param $heads i32) (param $t i32)
    (local $blk i32) (local $i i32) (local $j i32) (local $row i32) (local $km i32)
    (local $end i32) (local $vend i32) (local $whole i32) (local $rowBytes i32) (local $span i32)
    (local $vm v128) (local $mv v128) (local $v v128) (local $lanes v128) (local $iv v128)
    (local $ninf v128) (local $four v128)
    (local $m f32) (local $x f32) (local $inv f32)
    (local.set $rowBytes (i32.shl (local.get $t) (i32.const 2)))
    (local.set $whole (i32.and (local.get $rowBytes) (i32.const -16)))
    (local.set $ninf (v128.const f32x4 -inf -inf -inf -inf))
    (local.set $four (v128.const i32x4 4 4 4 4))
    (local.set $row (local.get $s))
    (block $doneB (loop $blockLoop
      (br_if $doneB (i32.ge_u (local.get $blk) (local.get $blocks)))
      (local.set $km (i32.add (local.get $mask)
        (i32.mul (i32.div_u (local.get $blk) (local.get $heads)) (local.get $rowBytes))))
      (local.set $i (i32.const 0))
      (block $doneR (loop $rowLoop
        (br_if $doneR (i32.ge_u (local.get $i) (local.get $t)))
        (local.set $end (i32.shl (i32.add (local.get $i) (i32.const 1)) (i32.const 2)))
        ;; whole chunks up to the one holding the diagonal, within the row's whole chunks
        (local.set $vend (i32.and (i32.add (local.get $end) (i32.const 15)) (i32.const -16)))
        (if (i32.gt_u (local.get $vend) (local.get $whole)) (then (local.set $vend (local.get $whole))))
        (local.set $span (select (local.get $vend) (local.get $end)
          (i32.gt_u (local.get $vend) (local.get $end))))
        (local.set $iv (i32x4.splat (local.get $i)))
        ;; unseen keys to -inf; the largest seen score
        (local.set $vm (local.get $ninf))
        (local.set $lanes (v128.const i32x4 0 1 2 3))
        (local.set $j (i32.const 0))
        (block $e1 (loop $l1
          (br_if $e1 (i32.ge_u (local.get $j) (local.get $vend)))
          (local.set $v (v128.bitselect
            (v128.load (i32.add (local.get $row) (local.get $j)))
            (local.get $ninf)
            (v128.and
              (f32x4.ne (v128.load (i32.add (local.get $km) (local.get $j))) (v128.const f32x4 0 0 0 0))
              (i32x4.le_s (local.get $lanes) (local.get $iv)))))
          (v128.store (i32.add (local.get $row) (local.get $j)) (local.get $v))
          (local.set $vm (f32x4.max (local.get $vm) (local.get $v)))
          (local.set $lanes (i32x4.add (local.get $lanes) (local.get $four)))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $l1)))
        (local.set $m (f32.max
          (f32.max (f32x4.extract_lane 0 (local.get $vm)) (f32x4.extract_lane 1 (local.get $vm)))
          (f32.max (f32x4.extract_lane 2 (local.get $vm)) (f32x4.extract_lane 3 (local.get $vm)))))
        (block $e1t (loop $l1t
          (br_if $e1t (i32.ge_u (local.get $j) (local.get $end)))
          (local.set $x (f32.const -inf))
          (if (f32.ne (f32.load (i32.add (local.get $km) (local.get $j))) (f32.const 0))
            (then (local.set $x (f32.load (i32.add (local.get $row) (local.get $j))))))
          (f32.store (i32.add (local.get $row) (local.get $j)) (local.get $x))
          (local.set $m (f32.max (local.get $m) (local.get $x)))
          (local.set $j (i32.add (local.get $j) (i32.const 4)))
          (br $l1t)))
        ;; exp(s - max) (0 where unseen), divided by the sum; zeros past the span
        (local.set $inv (f32.div (f32.const 1)
          (call $expShift (local.get $row) (local.get $row) (local.get $span) (local.get $m))))
        (local.set $mv (f32x4.splat (local.get $inv)))
        (local.set $j (i32.const 0))
        (block $e3 (loop $l3
          (br_if $e3 (i32.ge_u (local.get $j) (local.get $vend)))
          (v128.store (i32.add (local.get $row) (local.get $j))
            (f32x4.mul (v128.load (i32.add (local.get $row) (local.get $j))) (local.get $mv)))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $l3)))
        (block $e3t (loop $l3t
          (br_if $e3t (i32.ge_u (local.get $j) (local.get $end)))
          (f32.store (i32.add (local.get $row) (local.get $j))
            (f32.mul (f32.load (i32.add (local.get $row) (local.get $j))) (local.get $inv)))
          (local.set $j (i32.add (local.get $j) (i32.const 4)))
          (br $l3t)))
        (if (i32.lt_u (local.get $j) (local.get $rowBytes))
          (then (memory.fill (i32.add (local.get $row) (local.get $j)) (i32.const 0)
            (i32.sub (local.get $rowBytes) (local.get $j)))))
        (local.set $row (i32.add (local.get $row) (local.get $rowBytes)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rowLoop)))
      (local.set $blk (i32.add (local.get $blk) (i32.const 1)))
      (br $blockLoop))))

    ;; The softmax gradient of one [t, t] block in place: with P at p and dP at g, per row
  ;; dS = P (dP - sum_j P dP) over the keys the row sees (j <= i; all t keys in a row whose
  ;; last entry is nonzero, as a row with every key masked has), 0 elsewhere.
  (func (export "softmaxGrad") (param $p i32) (param $g i32) (param $t i32)
    (local $i i32) (local $j i32) (local $end i32) (local $vend i32) (local $rowBytes i32)
    (local $acc v128) (local $dv v128) (local $dot f32)
    (local.set $rowBytes (i32.shl (local.get $t) (i32.const 2)))
    (block $done (loop $rowLoop
      (br_if $done (i32.ge_u (local.get $i) (local.get $t)))
      (local.set $end (i32.shl (i32.add (local.get $i) (i32.const 1)) (i32.const 2)))
      (if (i32.and (i32.lt_u (local.get $end) (local.get $rowBytes))
            (f32.ne (f32.load (i32.add (local.get $p) (i32.sub (local.get $rowBytes) (i32.const 4))))
              (f32.const 0)))
        (then (local.set $end (local.get $rowBytes))))
      (local.set $vend (i32.and (local.get $end) (i32.const -16)))
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (block $e1 (loop $l1
        (br_if $e1 (i32.ge_u (local.get $j) (local.get $vend)))
        (local.set $acc (f32x4.add (local.get $acc)
          (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $j)))
            (v128.load (i32.add (local.get $g) (local.get $j))))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l1)))
      (local.set $dot (call $hsum (local.get $acc)))
      (block $e1t (loop $l1t
        (br_if $e1t (i32.ge_u (local.get $j) (local.get $end)))
        (local.set $dot (f32.add (local.get $dot)
          (f32.mul (f32.load (i32.add (local.get $p) (local.get $j)))
            (f32.load (i32.add (local.get $g) (local.get $j))))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $l1t)))
      (local.set $dv (f32x4.splat (local.get $dot)))
      (local.set $j (i32.const 0))
      (block $e2 (loop $l2
        (br_if $e2 (i32.ge_u (local.get $j) (local.get $vend)))
        (v128.store (i32.add (local.get $g) (local.get $j))
          (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $j)))
            (f32x4.sub (v128.load (i32.add (local.get $g) (local.get $j))) (local.get $dv))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l2)))
      (block $e2t (loop $l2t
        (br_if $e2t (i32.ge_u (local.get $j) (local.get $end)))
        (f32.store (i32.add (local.get $g) (local.get $j))
          (f32.mul (f32.load (i32.add (local.get $p) (local.get $j)))
            (f32.sub (f32.load (i32.add (local.get $g) (local.get $j))) (local.get $dot))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $l2t)))
      (memory.fill (i32.add (local.get $g) (local.get $end)) (i32.const 0)
        (i32.sub (local.get $rowBytes) (local.get $end)))
      (local.set $p (i32.add (local.get $p) (local.get $rowBytes)))
      (local.set $g (i32.add (local.get $g) (local.get $rowBytes)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rowLoop))))

  ;; Next-token cross-entropy's rows: for each row r of v logits x with weight w_r (the loss
  ;; mask over its sum), m = max x, e = exp(x - m), sum = sum e; the gradient
  ;; w_r (e / sum - onehot(target_r)) into grad (0 for a target outside [0, v)), and m, sum
  ;; into stats[2r], stats[2r + 1] (the loss needs log(sum), taken by the caller).
  (func (export "crossEntropyRows")
    (param $x i32) (param $targets i32) (param $w i32) (param $grad i32) (param $stats i32)
    (param $rows i32) (param $v i32)
    (local $row i32) (local $j i32) (local $bytes i32) (local $vend i32) (local $target i32)
    (local $vm v128) (local $mv v128)
    (local $m f32) (local $sum f32) (local $scale f32) (local $wr f32)
    (local.set $bytes (i32.shl (local.get $v) (i32.const 2)))
    (local.set $vend (i32.and (local.get $bytes) (i32.const -16)))
    (block $done (loop $rowLoop
      (br_if $done (i32.ge_u (local.get $row) (local.get $rows)))
      ;; max
      (local.set $vm (v128.const f32x4 -inf -inf -inf -inf))
      (local.set $j (i32.const 0))
      (block $e1 (loop $l1
        (br_if $e1 (i32.ge_u (local.get $j) (local.get $vend)))
        (local.set $vm (f32x4.max (local.get $vm) (v128.load (i32.add (local.get $x) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l1)))
      (local.set $m (f32.max
        (f32.max (f32x4.extract_lane 0 (local.get $vm)) (f32x4.extract_lane 1 (local.get $vm)))
        (f32.max (f32x4.extract_lane 2 (local.get $vm)) (f32x4.extract_lane 3 (local.get $vm)))))
      (block $e1t (loop $l1t
        (br_if $e1t (i32.ge_u (local.get $j) (local.get $bytes)))
        (local.set $m (f32.max (local.get $m) (f32.load (i32.add (local.get $x) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $l1t)))
      ;; exp(x - m) into grad; the sum
      (local.set $sum (call $expShift (local.get $x) (local.get $grad) (local.get $bytes) (local.get $m)))
      (f32.store (local.get $stats) (local.get $m))
      (f32.store (i32.add (local.get $stats) (i32.const 4)) (local.get $sum))
      ;; w (e / sum - onehot)
      (local.set $wr (f32.load (local.get $w)))
      (local.set $scale (f32.div (local.get $wr) (local.get $sum)))
      (local.set $mv (f32x4.splat (local.get $scale)))
      (local.set $j (i32.const 0))
      (block $e3 (loop $l3
        (br_if $e3 (i32.ge_u (local.get $j) (local.get $vend)))
        (v128.store (i32.add (local.get $grad) (local.get $j))
          (f32x4.mul (v128.load (i32.add (local.get $grad) (local.get $j))) (local.get $mv)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l3)))
      (block $e3t (loop $l3t
        (br_if $e3t (i32.ge_u (local.get $j) (local.get $bytes)))
        (f32.store (i32.add (local.get $grad) (local.get $j))
          (f32.mul (f32.load (i32.add (local.get $grad) (local.get $j))) (local.get $scale)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $l3t)))
      (local.set $target (i32.load (local.get $targets)))
      (if (i32.lt_u (local.get $target) (local.get $v))
        (then
          (local.set $j (i32.add (local.get $grad) (i32.shl (local.get $target) (i32.const 2))))
          (f32.store (local.get $j) (f32.sub (f32.load (local.get $j)) (local.get $wr))))
        (else (memory.fill (local.get $grad) (i32.const 0) (local.get $bytes))))
      (local.set $x (i32.add (local.get $x) (local.get $bytes)))
      (local.set $grad (i32.add (local.get $grad) (local.get $bytes)))
      (local.set $targets (i32.add (local.get $targets) (i32.const 4)))
      (local.set $w (i32.add (local.get $w) (i32.const 4)))
      (local.set $stats (i32.add (local.get $stats) (i32.const 8)))
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $rowLoop))))

  ;; ---- BLAS: sgemm, sgemv, sdot (row-major, cblas semantics) ----
  ;; Operands are byte offsets of float32 data in the heap; leading dimensions and increments
  ;; count floats. The TypeScript side (simd_blas.ts) checks the order and flags.

  ;; The work area sgemm needs (bytes, allocated by the caller): op(B) packed, KC = 256 rows
  ;; by NC = 512 columns, as panels of 8 columns (for each k, the panel's 8 values, zero past
  ;; n), then a 4x8 tile for the edges of C.
  (func (export "sgemmWorkBytes") (result i32) (i32.const 524416))

  ;; C = beta C (0 when beta is 0, whatever C held) over m rows of n.
  (func $scaleC (param $m i32) (param $n i32) (param $beta f32) (param $c i32) (param $ldc i32)
    (local $i i32) (local $j i32) (local $p i32)
    (block $done (loop $rows
      (br_if $done (i32.ge_u (local.get $i) (local.get $m)))
      (local.set $p (i32.add (local.get $c)
        (i32.shl (i32.mul (local.get $i) (local.get $ldc)) (i32.const 2))))
      (local.set $j (i32.const 0))
      (block $e (loop $cols
        (br_if $e (i32.ge_u (local.get $j) (local.get $n)))
        (if (f32.eq (local.get $beta) (f32.const 0))
          (then (f32.store (local.get $p) (f32.const 0)))
          (else (f32.store (local.get $p) (f32.mul (local.get $beta) (f32.load (local.get $p))))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $cols)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rows))))

  ;; Pack rows pc..pc+kc and columns jc..jc+nc of op(B) (B itself when tb is 0, else its
  ;; transpose) into panels of 8 columns at dst: panel p (columns jc+8p..) holds kc groups of
  ;; 8 floats, zero past the last column.
  (func $packB (param $tb i32) (param $b i32) (param $ldb i32) (param $pc i32) (param $jc i32)
    (param $kc i32) (param $nc i32) (param $dst i32)
    (local $j i32) (local $nr i32) (local $kk i32) (local $jj i32) (local $src i32) (local $d i32)
    (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $ldb) (i32.const 2)))
    (block $done (loop $panels
      (br_if $done (i32.ge_u (local.get $j) (local.get $nc)))
      (local.set $nr (i32.sub (local.get $nc) (local.get $j)))
      (if (i32.gt_u (local.get $nr) (i32.const 8)) (then (local.set $nr (i32.const 8))))
      (local.set $d (i32.add (local.get $dst)
        (i32.shl (i32.mul (local.get $j) (local.get $kc)) (i32.const 2))))
      (if (i32.eqz (local.get $tb))
        (then
          ;; op(B)[kk, j] = B[(pc + kk) ldb + jc + j]: rows of B, 8 values at a time
          (local.set $src (i32.add (local.get $b) (i32.shl
            (i32.add (i32.mul (local.get $pc) (local.get $ldb))
              (i32.add (local.get $jc) (local.get $j))) (i32.const 2))))
          (local.set $kk (i32.const 0))
          (if (i32.eq (local.get $nr) (i32.const 8))
            (then
              (block $e1 (loop $l1
                (br_if $e1 (i32.ge_u (local.get $kk) (local.get $kc)))
                (v128.store (local.get $d) (v128.load (local.get $src)))
                (v128.store offset=16 (local.get $d) (v128.load offset=16 (local.get $src)))
                (local.set $src (i32.add (local.get $src) (local.get $rowBytes)))
                (local.set $d (i32.add (local.get $d) (i32.const 32)))
                (local.set $kk (i32.add (local.get $kk) (i32.const 1)))
                (br $l1))))
            (else
              (block $e2 (loop $l2
                (br_if $e2 (i32.ge_u (local.get $kk) (local.get $kc)))
                (v128.store (local.get $d) (v128.const f32x4 0 0 0 0))
                (v128.store offset=16 (local.get $d) (v128.const f32x4 0 0 0 0))
                (local.set $jj (i32.const 0))
                (block $e3 (loop $l3
                  (br_if $e3 (i32.ge_u (local.get $jj) (local.get $nr)))
                  (f32.store (i32.add (local.get $d) (i32.shl (local.get $jj) (i32.const 2)))
                    (f32.load (i32.add (local.get $src) (i32.shl (local.get $jj) (i32.const 2)))))
                  (local.set $jj (i32.add (local.get $jj) (i32.const 1)))
                  (br $l3)))
                (local.set $src (i32.add (local.get $src) (local.get $rowBytes)))
                (local.set $d (i32.add (local.get $d) (i32.const 32)))
                (local.set $kk (i32.add (local.get $kk) (i32.const 1)))
                (br $l2))))))
        (else
          ;; op(B)[kk, j] = B[(jc + j) ldb + pc + kk]: column jj of the panel is a row of B
          (local.set $jj (i32.const 0))
          (block $e4 (loop $l4
            (br_if $e4 (i32.ge_u (local.get $jj) (i32.const 8)))
            (local.set $kk (i32.const 0))
            (if (i32.lt_u (local.get $jj) (local.get $nr))
              (then
                (local.set $src (i32.add (local.get $b) (i32.shl
                  (i32.add (i32.mul (i32.add (local.get $jc) (i32.add (local.get $j) (local.get $jj)))
                    (local.get $ldb)) (local.get $pc)) (i32.const 2))))
                (block $e5 (loop $l5
                  (br_if $e5 (i32.ge_u (local.get $kk) (local.get $kc)))
                  (f32.store (i32.add (local.get $d) (i32.shl (local.get $kk) (i32.const 5)))
                    (f32.load (local.get $src)))
                  (local.set $src (i32.add (local.get $src) (i32.const 4)))
                  (local.set $kk (i32.add (local.get $kk) (i32.const 1)))
                  (br $l5))))
              (else
                (block $e6 (loop $l6
                  (br_if $e6 (i32.ge_u (local.get $kk) (local.get $kc)))
                  (f32.store (i32.add (local.get $d) (i32.shl (local.get $kk) (i32.const 5)))
                    (f32.const 0))
                  (local.set $kk (i32.add (local.get $kk) (i32.const 1)))
                  (br $l6)))))
            (local.set $d (i32.add (local.get $d) (i32.const 4)))
            (local.set $jj (i32.add (local.get $jj) (i32.const 1)))
            (br $l4)))))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br $panels))))

  ;; C = alpha op(A) op(B) + beta C, with op(A) m x k, op(B) k x n (ta, tb: 1 transposes the
  ;; stored matrix), row-major with leading dimensions lda, ldb, ldc; beta 0 never reads C.
  ;; Blocks of 256 rows and 512 columns of op(B) are packed into `work`; each 4x8 tile of C
  ;; is eight f32x4 accumulators over the block's k, with the four rows of op(A) read in
  ;; place (a row past m repeats the last one, its results dropped).
  (func (export "sgemm")
    (param $ta i32) (param $tb i32) (param $m i32) (param $n i32) (param $k i32)
    (param $alpha f32) (param $a i32) (param $lda i32) (param $b i32) (param $ldb i32)
    (param $beta f32) (param $c i32) (param $ldc i32) (param $work i32)
    (local $jc i32) (local $nc i32) (local $pc i32) (local $kc i32) (local $cb f32)
    (local $i0 i32) (local $mr i32) (local $j i32) (local $nr i32) (local $last i32)
    (local $pa i32) (local $o1 i32) (local $o2 i32) (local $o3 i32) (local $astep i32)
    (local $rowStep i32) (local $p i32) (local $pb i32) (local $end i32) (local $cp i32)
    (local $ldcBytes i32) (local $tile i32) (local $r i32) (local $jj i32) (local $q i32)
    (local $v f32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local $b0 v128) (local $b1 v128) (local $av v128) (local $va v128) (local $vb v128)
    (if (i32.or (i32.eqz (local.get $m)) (i32.eqz (local.get $n))) (then (return)))
    (if (i32.or (i32.eqz (local.get $k)) (f32.eq (local.get $alpha) (f32.const 0)))
      (then
        (call $scaleC (local.get $m) (local.get $n) (local.get $beta) (local.get $c)
          (local.get $ldc))
        (return)))
    (local.set $ldcBytes (i32.shl (local.get $ldc) (i32.const 2)))
    (local.set $tile (i32.add (local.get $work) (i32.const 524288)))
    (local.set $va (f32x4.splat (local.get $alpha)))
    (block $jcDone (loop $jcLoop
      (br_if $jcDone (i32.ge_u (local.get $jc) (local.get $n)))
      (local.set $nc (i32.sub (local.get $n) (local.get $jc)))
      (if (i32.gt_u (local.get $nc) (i32.const 512)) (then (local.set $nc (i32.const 512))))
      (local.set $pc (i32.const 0))
      (block $pcDone (loop $pcLoop
        (br_if $pcDone (i32.ge_u (local.get $pc) (local.get $k)))
        (local.set $kc (i32.sub (local.get $k) (local.get $pc)))
        (if (i32.gt_u (local.get $kc) (i32.const 256)) (then (local.set $kc (i32.const 256))))
        (call $packB (local.get $tb) (local.get $b) (local.get $ldb) (local.get $pc)
          (local.get $jc) (local.get $kc) (local.get $nc) (local.get $work))
        ;; The first block of k brings beta C; the others add onto it.
        (local.set $cb (if (result f32) (i32.eqz (local.get $pc))
          (then (local.get $beta)) (else (f32.const 1))))
        (local.set $vb (f32x4.splat (local.get $cb)))
        (local.set $i0 (i32.const 0))
        (block $iDone (loop $iLoop
          (br_if $iDone (i32.ge_u (local.get $i0) (local.get $m)))
          (local.set $mr (i32.sub (local.get $m) (local.get $i0)))
          (if (i32.gt_u (local.get $mr) (i32.const 4)) (then (local.set $mr (i32.const 4))))
          ;; op(A)[i0 + r, pc + kk] at pa + o_r + kk astep
          (if (i32.eqz (local.get $ta))
            (then
              (local.set $pa (i32.add (local.get $a) (i32.shl
                (i32.add (i32.mul (local.get $i0) (local.get $lda)) (local.get $pc)) (i32.const 2))))
              (local.set $astep (i32.const 4))
              (local.set $rowStep (i32.shl (local.get $lda) (i32.const 2))))
            (else
              (local.set $pa (i32.add (local.get $a) (i32.shl
                (i32.add (i32.mul (local.get $pc) (local.get $lda)) (local.get $i0)) (i32.const 2))))
              (local.set $astep (i32.shl (local.get $lda) (i32.const 2)))
              (local.set $rowStep (i32.const 4))))
          (local.set $last (i32.sub (local.get $mr) (i32.const 1)))
          (local.set $o1 (i32.mul (local.get $rowStep)
            (select (i32.const 1) (local.get $last) (i32.gt_u (local.get $last) (i32.const 1)))))
          (local.set $o2 (i32.mul (local.get $rowStep)
            (select (i32.const 2) (local.get $last) (i32.gt_u (local.get $last) (i32.const 2)))))
          (local.set $o3 (i32.mul (local.get $rowStep) (local.get $last)))
          (local.set $j (i32.const 0))
          (block $jDone (loop $jLoop
            (br_if $jDone (i32.ge_u (local.get $j) (local.get $nc)))
            (local.set $nr (i32.sub (local.get $nc) (local.get $j)))
            (if (i32.gt_u (local.get $nr) (i32.const 8)) (then (local.set $nr (i32.const 8))))
            (local.set $pb (i32.add (local.get $work)
              (i32.shl (i32.mul (local.get $j) (local.get $kc)) (i32.const 2))))
            (local.set $end (i32.add (local.get $pb) (i32.shl (local.get $kc) (i32.const 5))))
            (local.set $p (local.get $pa))
            (local.set $c00 (v128.const f32x4 0 0 0 0))
            (local.set $c01 (v128.const f32x4 0 0 0 0))
            (local.set $c10 (v128.const f32x4 0 0 0 0))
            (local.set $c11 (v128.const f32x4 0 0 0 0))
            (local.set $c20 (v128.const f32x4 0 0 0 0))
            (local.set $c21 (v128.const f32x4 0 0 0 0))
            (local.set $c30 (v128.const f32x4 0 0 0 0))
            (local.set $c31 (v128.const f32x4 0 0 0 0))
            (loop $kLoop
              (local.set $b0 (v128.load (local.get $pb)))
              (local.set $b1 (v128.load offset=16 (local.get $pb)))
              (local.set $av (v128.load32_splat (local.get $p)))
              (local.set $c00 (f32x4.relaxed_madd (local.get $av) (local.get $b0) (local.get $c00)))
              (local.set $c01 (f32x4.relaxed_madd (local.get $av) (local.get $b1) (local.get $c01)))
              (local.set $av (v128.load32_splat (i32.add (local.get $p) (local.get $o1))))
              (local.set $c10 (f32x4.relaxed_madd (local.get $av) (local.get $b0) (local.get $c10)))
              (local.set $c11 (f32x4.relaxed_madd (local.get $av) (local.get $b1) (local.get $c11)))
              (local.set $av (v128.load32_splat (i32.add (local.get $p) (local.get $o2))))
              (local.set $c20 (f32x4.relaxed_madd (local.get $av) (local.get $b0) (local.get $c20)))
              (local.set $c21 (f32x4.relaxed_madd (local.get $av) (local.get $b1) (local.get $c21)))
              (local.set $av (v128.load32_splat (i32.add (local.get $p) (local.get $o3))))
              (local.set $c30 (f32x4.relaxed_madd (local.get $av) (local.get $b0) (local.get $c30)))
              (local.set $c31 (f32x4.relaxed_madd (local.get $av) (local.get $b1) (local.get $c31)))
              (local.set $p (i32.add (local.get $p) (local.get $astep)))
              (local.set $pb (i32.add (local.get $pb) (i32.const 32)))
              (br_if $kLoop (i32.lt_u (local.get $pb) (local.get $end))))
            (local.set $cp (i32.add (local.get $c) (i32.shl
              (i32.add (i32.mul (local.get $i0) (local.get $ldc))
                (i32.add (local.get $jc) (local.get $j))) (i32.const 2))))
            (if (i32.and (i32.eq (local.get $mr) (i32.const 4)) (i32.eq (local.get $nr) (i32.const 8)))
              (then
                (if (f32.eq (local.get $cb) (f32.const 0))
                  (then
                    (v128.store (local.get $cp) (f32x4.mul (local.get $va) (local.get $c00)))
                    (v128.store offset=16 (local.get $cp) (f32x4.mul (local.get $va) (local.get $c01)))
                    (local.set $cp (i32.add (local.get $cp) (local.get $ldcBytes)))
                    (v128.store (local.get $cp) (f32x4.mul (local.get $va) (local.get $c10)))
                    (v128.store offset=16 (local.get $cp) (f32x4.mul (local.get $va) (local.get $c11)))
                    (local.set $cp (i32.add (local.get $cp) (local.get $ldcBytes)))
                    (v128.store (local.get $cp) (f32x4.mul (local.get $va) (local.get $c20)))
                    (v128.store offset=16 (local.get $cp) (f32x4.mul (local.get $va) (local.get $c21)))
                    (local.set $cp (i32.add (local.get $cp) (local.get $ldcBytes)))
                    (v128.store (local.get $cp) (f32x4.mul (local.get $va) (local.get $c30)))
                    (v128.store offset=16 (local.get $cp) (f32x4.mul (local.get $va) (local.get $c31))))
                  (else
                    (v128.store (local.get $cp) (f32x4.relaxed_madd (local.get $vb)
                      (v128.load (local.get $cp)) (f32x4.mul (local.get $va) (local.get $c00))))
                    (v128.store offset=16 (local.get $cp) (f32x4.relaxed_madd (local.get $vb)
                      (v128.load offset=16 (local.get $cp)) (f32x4.mul (local.get $va) (local.get $c01))))
                    (local.set $cp (i32.add (local.get $cp) (local.get $ldcBytes)))
                    (v128.store (local.get $cp) (f32x4.relaxed_madd (local.get $vb)
                      (v128.load (local.get $cp)) (f32x4.mul (local.get $va) (local.get $c10))))
                    (v128.store offset=16 (local.get $cp) (f32x4.relaxed_madd (local.get $vb)
                      (v128.load offset=16 (local.get $cp)) (f32x4.mul (local.get $va) (local.get $c11))))
                    (local.set $cp (i32.add (local.get $cp) (local.get $ldcBytes)))
                    (v128.store (local.get $cp) (f32x4.relaxed_madd (local.get $vb)
                      (v128.load (local.get $cp)) (f32x4.mul (local.get $va) (local.get $c20))))
                    (v128.store offset=16 (local.get $cp) (f32x4.relaxed_madd (local.get $vb)
                      (v128.load offset=16 (local.get $cp)) (f32x4.mul (local.get $va) (local.get $c21))))
                    (local.set $cp (i32.add (local.get $cp) (local.get $ldcBytes)))
                    (v128.store (local.get $cp) (f32x4.relaxed_madd (local.get $vb)
                      (v128.load (local.get $cp)) (f32x4.mul (local.get $va) (local.get $c30))))
                    (v128.store offset=16 (local.get $cp) (f32x4.relaxed_madd (local.get $vb)
                      (v128.load offset=16 (local.get $cp)) (f32x4.mul (local.get $va) (local.get $c31)))))))
              (else
                ;; An edge tile: through the tile buffer, the rows and columns inside C only.
                (v128.store offset=0 (local.get $tile) (local.get $c00))
                (v128.store offset=16 (local.get $tile) (local.get $c01))
                (v128.store offset=32 (local.get $tile) (local.get $c10))
                (v128.store offset=48 (local.get $tile) (local.get $c11))
                (v128.store offset=64 (local.get $tile) (local.get $c20))
                (v128.store offset=80 (local.get $tile) (local.get $c21))
                (v128.store offset=96 (local.get $tile) (local.get $c30))
                (v128.store offset=112 (local.get $tile) (local.get $c31))
                (local.set $r (i32.const 0))
                (block $rDone (loop $rLoop
                  (br_if $rDone (i32.ge_u (local.get $r) (local.get $mr)))
                  (local.set $jj (i32.const 0))
                  (block $ccDone (loop $ccLoop
                    (br_if $ccDone (i32.ge_u (local.get $jj) (local.get $nr)))
                    (local.set $q (i32.add (local.get $cp) (i32.shl (local.get $jj) (i32.const 2))))
                    (local.set $v (f32.mul (local.get $alpha) (f32.load (i32.add (local.get $tile)
                      (i32.shl (i32.add (i32.shl (local.get $r) (i32.const 3)) (local.get $jj))
                        (i32.const 2))))))
                    (if (f32.ne (local.get $cb) (f32.const 0))
                      (then (local.set $v (f32.add (local.get $v)
                        (f32.mul (local.get $cb) (f32.load (local.get $q)))))))
                    (f32.store (local.get $q) (local.get $v))
                    (local.set $jj (i32.add (local.get $jj) (i32.const 1)))
                    (br $ccLoop)))
                  (local.set $cp (i32.add (local.get $cp) (local.get $ldcBytes)))
                  (local.set $r (i32.add (local.get $r) (i32.const 1)))
                  (br $rLoop)))))
            (local.set $j (i32.add (local.get $j) (i32.const 8)))
            (br $jLoop)))
          (local.set $i0 (i32.add (local.get $i0) (i32.const 4)))
          (br $iLoop)))
        (local.set $pc (i32.add (local.get $pc) (local.get $kc)))
        (br $pcLoop)))
      (local.set $jc (i32.add (local.get $jc) (local.get $nc)))
      (br $jcLoop))))

  ;; sum_i x[i incx] y[i incy] over n values.
  (func $dot (param $n i32) (param $x i32) (param $incx i32) (param $y i32) (param $incy i32)
    (result f32)
    (local $i i32) (local $s f32) (local $acc0 v128) (local $acc1 v128) (local $end i32)
    (local $xs i32) (local $ys i32)
    (if (i32.and (i32.eq (local.get $incx) (i32.const 1)) (i32.eq (local.get $incy) (i32.const 1)))
      (then
        (local.set $end (i32.and (local.get $n) (i32.const -8)))
        (block $e1 (loop $l1
          (br_if $e1 (i32.ge_u (local.get $i) (local.get $end)))
          (local.set $acc0 (f32x4.relaxed_madd (v128.load (local.get $x)) (v128.load (local.get $y))
            (local.get $acc0)))
          (local.set $acc1 (f32x4.relaxed_madd (v128.load offset=16 (local.get $x))
            (v128.load offset=16 (local.get $y)) (local.get $acc1)))
          (local.set $x (i32.add (local.get $x) (i32.const 32)))
          (local.set $y (i32.add (local.get $y) (i32.const 32)))
          (local.set $i (i32.add (local.get $i) (i32.const 8)))
          (br $l1)))
        (local.set $s (call $hsum (f32x4.add (local.get $acc0) (local.get $acc1))))
        (block $e2 (loop $l2
          (br_if $e2 (i32.ge_u (local.get $i) (local.get $n)))
          (local.set $s (f32.add (local.get $s)
            (f32.mul (f32.load (local.get $x)) (f32.load (local.get $y)))))
          (local.set $x (i32.add (local.get $x) (i32.const 4)))
          (local.set $y (i32.add (local.get $y) (i32.const 4)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l2)))
        (return (local.get $s))))
    (local.set $xs (i32.shl (local.get $incx) (i32.const 2)))
    (local.set $ys (i32.shl (local.get $incy) (i32.const 2)))
    (block $e3 (loop $l3
      (br_if $e3 (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $s (f32.add (local.get $s)
        (f32.mul (f32.load (local.get $x)) (f32.load (local.get $y)))))
      (local.set $x (i32.add (local.get $x) (local.get $xs)))
      (local.set $y (i32.add (local.get $y) (local.get $ys)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l3)))
    (local.get $s))

  ;; cblas_sdot: sum_i x[i incx] y[i incy] (increments positive).
  (func (export "sdot") (param $n i32) (param $x i32) (param $incx i32) (param $y i32)
    (param $incy i32) (result f32)
    (call $dot (local.get $n) (local.get $x) (local.get $incx) (local.get $y) (local.get $incy)))

  ;; cblas_sgemv, row-major: y = alpha op(A) x + beta y with A m x n (trans 1: op(A) = Aᵀ);
  ;; beta 0 never reads y. Increments positive.
  (func (export "sgemv") (param $trans i32) (param $m i32) (param $n i32) (param $alpha f32)
    (param $a i32) (param $lda i32) (param $x i32) (param $incx i32) (param $beta f32)
    (param $y i32) (param $incy i32)
    (local $i i32) (local $j i32) (local $v f32) (local $q i32) (local $rowBytes i32)
    (local $ys i32) (local $xs i32) (local $vend i32) (local $end i32)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128) (local $acc v128)
    (local $a0 i32) (local $f f32)
    (local.set $rowBytes (i32.shl (local.get $lda) (i32.const 2)))
    (local.set $ys (i32.shl (local.get $incy) (i32.const 2)))
    (local.set $xs (i32.shl (local.get $incx) (i32.const 2)))
    (if (i32.eqz (local.get $trans))
      (then
        ;; y_i = alpha (row i of A . x) + beta y_i
        (block $e1 (loop $l1
          (br_if $e1 (i32.ge_u (local.get $i) (local.get $m)))
          (local.set $v (f32.mul (local.get $alpha) (call $dot (local.get $n)
            (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rowBytes)))
            (i32.const 1) (local.get $x) (local.get $incx))))
          (local.set $q (i32.add (local.get $y) (i32.mul (local.get $i) (local.get $ys))))
          (if (f32.ne (local.get $beta) (f32.const 0))
            (then (local.set $v (f32.add (local.get $v)
              (f32.mul (local.get $beta) (f32.load (local.get $q)))))))
          (f32.store (local.get $q) (local.get $v))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l1)))
        (return)))
    ;; Aᵀ x: y = beta y first, then y += (alpha x_i) row i of A, four rows at a time.
    (call $scaleC (local.get $n) (i32.const 1) (local.get $beta) (local.get $y) (local.get $incy))
    (if (i32.ne (local.get $incy) (i32.const 1))
      (then
        (block $e2 (loop $l2
          (br_if $e2 (i32.ge_u (local.get $i) (local.get $m)))
          (local.set $f (f32.mul (local.get $alpha)
            (f32.load (i32.add (local.get $x) (i32.mul (local.get $i) (local.get $xs))))))
          (local.set $a0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rowBytes))))
          (local.set $j (i32.const 0))
          (block $e3 (loop $l3
            (br_if $e3 (i32.ge_u (local.get $j) (local.get $n)))
            (local.set $q (i32.add (local.get $y) (i32.mul (local.get $j) (local.get $ys))))
            (f32.store (local.get $q) (f32.add (f32.load (local.get $q)) (f32.mul (local.get $f)
              (f32.load (i32.add (local.get $a0) (i32.shl (local.get $j) (i32.const 2)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $l3)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l2)))
        (return)))
    (local.set $vend (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $e4 (loop $l4
      (br_if $e4 (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $m)))
      (local.set $a0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rowBytes))))
      (local.set $q (i32.add (local.get $x) (i32.mul (local.get $i) (local.get $xs))))
      (local.set $s0 (f32x4.splat (f32.mul (local.get $alpha) (f32.load (local.get $q)))))
      (local.set $q (i32.add (local.get $q) (local.get $xs)))
      (local.set $s1 (f32x4.splat (f32.mul (local.get $alpha) (f32.load (local.get $q)))))
      (local.set $q (i32.add (local.get $q) (local.get $xs)))
      (local.set $s2 (f32x4.splat (f32.mul (local.get $alpha) (f32.load (local.get $q)))))
      (local.set $q (i32.add (local.get $q) (local.get $xs)))
      (local.set $s3 (f32x4.splat (f32.mul (local.get $alpha) (f32.load (local.get $q)))))
      (local.set $j (i32.const 0))
      (block $e5 (loop $l5
        (br_if $e5 (i32.ge_u (local.get $j) (local.get $vend)))
        (local.set $q (i32.add (local.get $a0) (local.get $j)))
        (local.set $acc (v128.load (i32.add (local.get $y) (local.get $j))))
        (local.set $acc (f32x4.relaxed_madd (local.get $s0) (v128.load (local.get $q)) (local.get $acc)))
        (local.set $q (i32.add (local.get $q) (local.get $rowBytes)))
        (local.set $acc (f32x4.relaxed_madd (local.get $s1) (v128.load (local.get $q)) (local.get $acc)))
        (local.set $q (i32.add (local.get $q) (local.get $rowBytes)))
        (local.set $acc (f32x4.relaxed_madd (local.get $s2) (v128.load (local.get $q)) (local.get $acc)))
        (local.set $q (i32.add (local.get $q) (local.get $rowBytes)))
        (local.set $acc (f32x4.relaxed_madd (local.get $s3) (v128.load (local.get $q)) (local.get $acc)))
        (v128.store (i32.add (local.get $y) (local.get $j)) (local.get $acc))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l5)))
      (block $e6 (loop $l6
        (br_if $e6 (i32.ge_u (local.get $j) (local.get $end)))
        (local.set $q (i32.add (local.get $a0) (local.get $j)))
        (local.set $v (f32.load (i32.add (local.get $y) (local.get $j))))
        (local.set $v (f32.add (local.get $v)
          (f32.mul (f32x4.extract_lane 0 (local.get $s0)) (f32.load (local.get $q)))))
        (local.set $q (i32.add (local.get $q) (local.get $rowBytes)))
        (local.set $v (f32.add (local.get $v)
          (f32.mul (f32x4.extract_lane 0 (local.get $s1)) (f32.load (local.get $q)))))
        (local.set $q (i32.add (local.get $q) (local.get $rowBytes)))
        (local.set $v (f32.add (local.get $v)
          (f32.mul (f32x4.extract_lane 0 (local.get $s2)) (f32.load (local.get $q)))))
        (local.set $q (i32.add (local.get $q) (local.get $rowBytes)))
        (local.set $v (f32.add (local.get $v)
          (f32.mul (f32x4.extract_lane 0 (local.get $s3)) (f32.load (local.get $q)))))
        (f32.store (i32.add (local.get $y) (local.get $j)) (local.get $v))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $l6)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $l4)))
    ;; the last rows, one at a time
    (block $e7 (loop $l7
      (br_if $e7 (i32.ge_u (local.get $i) (local.get $m)))
      (local.set $a0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rowBytes))))
      (local.set $s0 (f32x4.splat (f32.mul (local.get $alpha)
        (f32.load (i32.add (local.get $x) (i32.mul (local.get $i) (local.get $xs)))))))
      (local.set $j (i32.const 0))
      (block $e8 (loop $l8
        (br_if $e8 (i32.ge_u (local.get $j) (local.get $vend)))
        (v128.store (i32.add (local.get $y) (local.get $j))
          (f32x4.relaxed_madd (local.get $s0) (v128.load (i32.add (local.get $a0) (local.get $j)))
            (v128.load (i32.add (local.get $y) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l8)))
      (block $e9 (loop $l9
        (br_if $e9 (i32.ge_u (local.get $j) (local.get $end)))
        (f32.store (i32.add (local.get $y) (local.get $j))
          (f32.add (f32.load (i32.add (local.get $y) (local.get $j)))
            (f32.mul (f32x4.extract_lane 0 (local.get $s0))
              (f32.load (i32.add (local.get $a0) (local.get $j))))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $l9)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l7))))
)
