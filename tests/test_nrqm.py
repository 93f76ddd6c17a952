"""Ma et al.'s metric and PIRM's Perceptual Index (superres.metrics.nrqm, superres.metrics.pi).

Test design.

* **Golden features from the official code.** github.com/mxzhuang/parallel-perceptual-index
  (commit 1fb8a2370e66fb24bc6f5794fc1945aa83a304ff) ran the unmodified MATLAB release of Ma et al.
  (chaoma99/sr-metric: ``feature_all.m`` and everything it calls) in GNU Octave and recorded every
  feature in ``reference/octave_reference.txt``. Its inputs are reproducible here: the Y channel
  ``floor(65.481/255 R + 128.553/255 G + 24.966/255 B + 16 + 0.5)`` of scikit-image's ``coffee``,
  ``chelsea`` and ``rocket`` photographs (shipped in the scikit-image wheel), shaved by 4 pixels
  (``tools/make_test_images.py``). Octave lacks MATLAB's ``imresize``; that run used a shim with
  the mirroring border rule of MATLAB R2017a and later, hence ``imresize_border="mirror"`` below.
  All 138 features must agree to 1e-8 (relative); they do to about 1e-12 (1e-9 for two block
  statistics of ``rocket``'s flat sky, whose AC coefficients are rounding noise).
* **Independent loop-based references** on crops of Set14/BSD100 images from the data root: block
  DCT statistics (explicit block loop, a DCT built from its cosine definition, a brute-force
  search of the shape table), patch SVDs (explicit im2col), the Gaussian pyramid (explicit 3x3
  sum), the divisive normalisation (a per-pixel neighbourhood loop, ``np.linalg.pinv``) and the
  SSIM structure term (per-window sums with the 2-D window). The steerable pyramid itself is
  only checked through the golden features.
* **The trained model is not available offline.** The forest and linear-regression path and the
  loader are tested on a small synthetic model written in the release's format (scipy.io.savemat
  of ``model.rf{1..3}`` / ``model.linear``) against a tree walk written here that follows the MEX
  predictor's ``nodestatus`` loop. No test claims a Ma score of the real model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import torch
from skimage import data as skdata

from superres.assets import get_asset
from superres.errors import (
    AssetNotFoundError,
    ImageTooSmallError,
    InvalidAssetError,
    InvalidImageError,
)
from superres.imaging.resize import imresize
from superres.io.image import read_image
from superres.metrics import (
    load_ma_model,
    ma_features,
    ma_score,
    nrqm,
    nrqm_blocks,
    nrqm_pyramid,
    perceptual_index,
)
from superres.metrics.niqe import niqe

MA_MODEL = get_asset("ma/model")

# --- the official code's features (Octave run; see the module docstring) --------------------------
# Per image: Ma, NIQE, s1, s2, s3 (not checkable without the trained model), then 18 f1, 45 f2 and
# 75 f3 values, each group preceded by its length.
_OCTAVE_REFERENCE = """
coffee_y.png
8.8349288776033159 4.0796603536373235 8.6596864583333044 8.484246458333347 8.6216420833333238
18 0.29994564379336902 0.88929535816177463 2.8211920650625131 1.4187220214895389
0.61005066567097321 0.14148095691615684 0.28529663608562777 0.82540557086011723
3.0518460706229322 1.5082400158199012 0.69678881469523923 0.16537087705538997
0.2739151515151515 0.76809575757575776 3.1455671989660297 1.5885271083491848
0.60662087088115313 0.16316208748708622 45 1.708 1.597 1.357 1.8160000000000001
1.8340000000000001 1.6850000000000001 1.4870000000000001 1.5800000000000001 1.5570000000000002
1.492 1.6820000000000002 1.5530000000000002 0.57700000000000007 0.66300000000000003
0.66500000000000004 0.60300000000000009 0.56500000000000006 0.56200000000000006
0.80773043467178052 0.78972669789799121 0.77776366000620845 0.79824167210331431
0.80315917060201425 0.8056633622598498 0.67705605309798733 0.62804095404403149
0.59727583373365523 0.63289769798192386 0.65240623403139641 0.67247489550077255
0.9424499355870678 0.87771336271106615 0.89508711521922191 0.88801300842659703
0.851901868802734 0.9614674643609572 0.90454087479764822 0.86853812664247465
0.85258577011472636 0.94143229659714789 0.86586155002968035 0.84573352211258002
0.95724809139175371 0.91012963486705645 0.96910496410005142 75 217.58559272416701
16.51853461806888 15.966828709783631 8.5022935197113227 7.2943271972776529 6.8710450077610323
6.1338034833706239 5.6391246974014004 4.7130036232676042 4.1343422486936179 3.854702406317307
3.5481514384229351 3.2050550027154325 2.8721303864760839 2.7345921256988501 2.6438582536512873
2.5791966285027081 2.5274478724980955 2.3107715841515657 2.1688192207211152 1.9760460518833112
1.8918770729467513 1.8208317418552211 1.7751031006960762 1.6759177735625808 108.17875560548387
9.5099643008918751 8.6207142721457046 4.7390435903589001 4.3459393506302479 4.1219397287316548
2.7650915842814006 2.7329195386105334 2.6456066088624004 2.3258483030594723 2.2060477776650269
2.1286200342288826 2.0086755125904405 1.9172219088385378 1.8707618028779351 1.7537077232388945
1.7122819275173955 1.6593354179509192 1.5456029059680034 1.4062971841299534 1.375430864676719
1.3177499707098297 1.2949071254764202 1.2388214067909562 1.2031653038764929 53.227745584397745
7.0528292699059278 7.0028592674265964 2.6837520068237013 2.4580649552119285 1.8906790066683983
1.7611853441010805 1.6238823684127284 1.5429684582185519 1.408793712186742 1.1384212705524679
1.0366460702175802 1.0231170457799699 0.98205257418465774 0.93509375977794418
0.90240352168026006 0.87422220034746156 0.80923753217590888 0.77525206428707938
0.75619062283065241 0.70973398209276384 0.65780588749030178 0.63291534481679301
0.60705925922085779 0.57454013326562692
chelsea_y.png
7.9546342079096313 2.6893130155949425 6.0658835416666541 8.6689720833333563 7.6279312499999863
18 0.25575189524465736 0.54301992553778133 3.5401949046394225 1.9206646788831754
1.057154660299721 0.2736904147863703 0.24950964187327859 0.58908190843905217 3.6397023976907756
1.8879641366599591 0.97085243732301374 0.24632779528760013 0.26415053763440866
0.57740756756756795 3.4990041905321285 1.8601815501016892 0.71892433672257861
0.19524295523639085 45 1.5030000000000001 1.7170000000000001 1.9440000000000002 1.788
1.9390000000000001 1.857 1.4630000000000001 1.871 2.1719999999999997 1.9440000000000002
1.9630000000000001 1.806 0.54600000000000004 0.60600000000000009 0.65500000000000003
0.60699999999999998 0.58700000000000008 0.57200000000000006 0.86943477604667108
0.86923414745652161 0.86792919512684108 0.86508430321465257 0.8706319047965041
0.87385370518385541 0.7008461261223996 0.69647124898946033 0.68179048957358357
0.6569394635598963 0.67265314501439233 0.69614797882416912 0.98136624978508336
0.9480617981299394 0.92987752780023614 0.92940614927250209 0.91218985878866432
0.97652930509622649 0.94235678229165043 0.93837915301340291 0.9334283781204803
0.97778983409130305 0.951233689998492 0.94023834364269421 0.97913220252646049
0.94659847253995111 0.97862917059349164 75 170.17727773625978 13.816837317706906
11.696100510153716 3.9226544484379025 3.7182070540096435 3.4517090823380001 2.5015722699209104
2.3347923470398837 2.2840571486528014 2.0779282094345981 1.7308492073231143 1.6818111356027434
1.6090432745229803 1.5968936476688995 1.4093114068536214 1.3171638488881079 1.2015059204187388
1.1342911550908357 0.99038494621894602 0.93475147639784717 0.89387646230515483
0.79441569779631138 0.75244696795397648 0.66943577861778214 0.55317132138857739
84.657464097115607 7.3597801805730478 6.6913217746821152 3.3739229327573597 3.2921732512905164
2.1142854894821856 1.4450924301712287 1.4162580722894593 1.3324954829108007 1.2655331632266684
0.96696964580349654 0.9239366533239769 0.88373337529035179 0.8644697886721695
0.83705102914004381 0.79661781886615979 0.772793980937585 0.7055388938771836
0.69695315921923262 0.64451102056498677 0.60320071859133373 0.55450354230417731
0.52507848794890777 0.49344990601436273 0.46361947432256739 41.810736951210892
6.219439770002908 2.9283993776590176 1.618825850856382 1.4648394819616319 1.3111395544248161
1.0174555643116698 0.95482028744802794 0.90232744567195433 0.74488711308516675
0.63781201300041246 0.62612066006067657 0.56304211357105693 0.52912975953748864
0.50702464589955598 0.48286223715797266 0.43563465890570269 0.39854376829756266
0.37695123585064372 0.34954247445234454 0.31156756870782598 0.2917835033322147
0.27264955527772972 0.25913696154275867 0.24755901701528035
rocket_y.png
8.886189169828242 6.7297987227055254 8.7377722916666833 8.2164508333333277 8.8873991666666878
18 0.34256770480704041 1.0567907921462447 2.495899516800193 1.2576942214687554
0.43721786745980518 0.096390065022252391 0.320366576819408 0.82022708894878515
2.6840604662090186 1.4345326739067139 0.61023664913854581 0.17773854608701367
0.26344086021505408 0.61709541778975818 3.2707355610435496 1.9052784823892481 1.194600370741548
0.39529697449238987 45 1.218 1.75 1.859 1.661 1.8480000000000001 1.921 1.383 2.008 1.8 1.611
1.845 2.052 0.63600000000000001 0.79900000000000004 0.88200000000000001 0.84800000000000009
0.88900000000000001 0.82900000000000007 0.86032707673445574 0.87302819802708942
0.88042156786654491 0.88026829156061481 0.88099241356950586 0.87544060535659063
0.78435220066490519 0.81077326852606701 0.83449406987505226 0.82982111067252029
0.83468685357791061 0.81602175662351606 0.97358533985260642 0.91818407597920559
0.89578544887404155 0.89098837015565258 0.83665001785033299 0.96665641339440445
0.92805425902405236 0.92162368570831676 0.8911307913014811 0.97535908935987736
0.94556011420453201 0.92280786574487883 0.9755596430631942 0.92969030567836064
0.96788558186311502 75 146.72150418577925 10.096706492318422 9.4554689476105249
6.6016150914188927 5.0573473326314726 4.6637315222905578 4.0454865156138879 3.904270968641709
3.6233354851392425 3.5220460626894718 3.1559276249372217 2.9841865581217277 2.8384468456256817
2.6534560044413609 2.5795102457938004 2.3643741319785136 2.0630842614401113 2.0085739818839494
1.8760070662601032 1.8293534794570965 1.7888168656674157 1.6592729051313904 1.4398830085696508
1.2573085157498578 1.1923872822343038 72.839044877204131 6.2824364459969644 5.4268637197497371
3.0706596255499594 2.5382811030377326 2.4849852680762639 2.2777805869424843 1.7878816808038585
1.6347910246999739 1.554573770248197 1.4838308846421719 1.3402067007141911 1.2866351843197645
1.2443910058674135 1.1708226298933835 1.1399572273689182 1.1136245678019623 1.0266473339312951
1.0199201352605118 1.0051021754756562 0.94662598123535657 0.89580625960704574
0.86133276122725588 0.82851226112122345 0.76624403852776934 36.044162182078004
4.0756937935020838 3.6150185171420643 2.1829016476755592 1.4212649119928213 1.1242187895577085
0.95409370585397879 0.83446025976244764 0.73974622635724663 0.64857548736355342
0.63519960535909825 0.56521939501377216 0.53647239885624687 0.49112963561658374
0.46974342186126228 0.45162552133448924 0.43349377109447002 0.40348835602418825
0.3912175632275125 0.38880033246468565 0.36954984033278826 0.33505707202044033
0.3233293646113784 0.29117815183778833 0.25573702615121335
"""


def _golden() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    records: dict[str, list[float]] = {}
    name = ""
    for line in _OCTAVE_REFERENCE.strip().splitlines():
        if line.endswith(".png"):
            name = line.removesuffix("_y.png")
            records[name] = []
        else:
            records[name] += [float(v) for v in line.split()]
    out = {}
    for key, v in records.items():
        assert (v[5], v[24], v[70]) == (18, 45, 75)
        assert len(v) == 146
        out[key] = (np.array(v[6:24]), np.array(v[25:70]), np.array(v[71:146]))
    return out


def _pirm_y(rgb: np.ndarray, shave: int = 4) -> np.ndarray:
    """The reference run's input: MATLAB-style rgb2ycbcr Y on uint8 (imlincomb order), shaved."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = np.floor(65.481 / 255 * r + 128.553 / 255 * g + 24.966 / 255 * b + 16 + 0.5)
    return np.clip(y, 0, 255).astype(np.uint8)[shave:-shave, shave:-shave]


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket"])
def test_features_match_the_official_code(name: str) -> None:
    f1, f2, f3 = _golden()[name]
    got = ma_features(_pirm_y(getattr(skdata, name)()), imresize_border="mirror")
    np.testing.assert_allclose(got.dct, f1, rtol=1e-8, atol=0)
    np.testing.assert_allclose(got.gsm, f2, rtol=1e-8, atol=0)
    np.testing.assert_allclose(got.svd, f3, rtol=1e-8, atol=0)


def test_replicate_border_changes_only_the_coarse_scale_resize_features() -> None:
    """MATLAB <= R2016b (the default) and R2017a+ differ only in imresize(band, size(hp))."""
    y = _pirm_y(skdata.chelsea())[:121, :171]  # odd sizes: the coarse bands are not half as big
    mirror = ma_features(y, imresize_border="mirror")
    replicate = ma_features(y)
    np.testing.assert_array_equal(replicate.dct, mirror.dct)
    np.testing.assert_array_equal(replicate.svd, mirror.svd)
    same = np.ones(45, dtype=bool)
    same[24:30] = False  # cs(imresize(coarser band, size(hp)), hp)
    np.testing.assert_array_equal(replicate.gsm[same], mirror.gsm[same])
    assert np.all(replicate.gsm[~same] != mirror.gsm[~same])
    np.testing.assert_allclose(replicate.gsm[~same], mirror.gsm[~same], rtol=1e-4)


# --- independent loop-based references -----------------------------------------------------------

_REF_G = [round(0.03 + 0.001 * k, 3) for k in range(9971)]
_REF_R = np.array([math.gamma(1 / g) * math.gamma(3 / g) / math.gamma(2 / g) ** 2 for g in _REF_G])


def _ref_ggd(values: list[float] | np.ndarray) -> float:
    """gama_gen_gauss: [~, pos] = min(abs(rho - r)) over the whole table."""
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    mean = sum(x) / n
    var = sum((v - mean) ** 2 for v in x) / (n - 1)
    mean_abs = (sum(abs(v - mean) for v in x) / n) ** 2
    rho = var / (mean_abs + 0.0000001)
    return _REF_G[int(np.argmin(np.abs(rho - _REF_R)))]


def _ref_std_over_mean(values: list[float], eps: float) -> float:
    a = [abs(v) for v in values]
    mean = sum(a) / len(a)
    std = math.sqrt(sum((v - mean) ** 2 for v in a) / (len(a) - 1))
    return std / (mean + eps)


_REF_COS = np.array(
    [
        [
            (math.sqrt(1 / 7) if u == 0 else math.sqrt(2 / 7))
            * math.cos(math.pi * (2 * x + 1) * u / 14)
            for x in range(7)
        ]
        for u in range(7)
    ]
)


def _ref_block_dct(im: np.ndarray) -> list[float]:
    """block_dct.m: blkproc(im, [3 3], [2 2], ...) with an explicit loop over the blocks."""
    h, w = im.shape
    gama, cv, ori = [], [], []
    for bc in range(math.ceil(w / 3)):
        for br in range(math.ceil(h / 3)):
            win = np.zeros((7, 7))
            for r in range(7):
                for c in range(7):
                    y, x = 3 * br - 2 + r, 3 * bc - 2 + c
                    if 0 <= y < h and 0 <= x < w:
                        win[r, c] = im[y, x]
            t = _REF_COS @ win @ _REF_COS.T  # dct2
            ac = [t[r, c] for c in range(7) for r in range(7)][1:]  # temp(:), without temp(1)
            gama.append(_ref_ggd(ac))
            cv.append(_ref_std_over_mean(ac, 0.0000001))
            # oriented1/2/3_dct_rho_config3, 7x7 configuration (MATLAB 1-based slices)
            o1 = [*t[0, 1:], *t[1, 2:], *t[2, 4:], *t[3, 5:]]
            o2 = [t[1, 1], *t[2, 2:4], *t[3, 2:5], *t[4, 3:], *t[5, 4:], *t[6, 4:]]
            o3 = [*t[1:, 0], *t[2:, 1], *t[4:, 2], *t[5:, 3]]
            g = [_ref_std_over_mean(o, 0.00000001) for o in (o1, o2, o3)]
            ori.append(float(np.var(g, ddof=1)))
    out = []
    for values, first in ((gama, True), (cv, False), (ori, False)):
        s = sorted(values)
        n = len(s)
        if first:  # mean(sorted(1:ceil(n*0.1)))
            out.append(sum(s[: math.ceil(n * 0.1)]) / math.ceil(n * 0.1))
        else:  # mean(sorted(fix(n*0.9):end))
            tail = s[math.trunc(n * 0.9) - 1 :]
            out.append(sum(tail) / len(tail))
        out.append(sum(s) / n)
    return out


def _ref_gauss_half(im: np.ndarray) -> np.ndarray:
    """imfilter(im, fspecial('gaussian', 3), 0) then im(2:2:end, 2:2:end), by explicit sums."""
    k = [[math.exp(-(i * i + j * j) / (2 * 0.5**2)) for j in (-1, 0, 1)] for i in (-1, 0, 1)]
    total = sum(map(sum, k))
    h, w = im.shape
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            acc = 0.0
            for i in range(3):
                for j in range(3):
                    yy, xx = y + i - 1, x + j - 1
                    if 0 <= yy < h and 0 <= xx < w:
                        acc += k[i][j] / total * im[yy, xx]
            out[y, x] = acc
    return out[1::2, 1::2]


def _ref_svd(im: np.ndarray) -> np.ndarray:
    """svd(im2col(im, [5 5], 'distinct')): zero padding, one column per block."""
    h, w = im.shape
    cols = []
    for bc in range(math.ceil(w / 5)):
        for br in range(math.ceil(h / 5)):
            col = []
            for c in range(5):
                for r in range(5):
                    y, x = 5 * br + r, 5 * bc + c
                    col.append(im[y, x] if y < h and x < w else 0.0)
            cols.append(col)
    return np.linalg.svd(np.array(cols).T, compute_uv=False)


def _ref_window() -> np.ndarray:
    w = np.array(
        [[math.exp(-(x * x + y * y) / (2 * 1.5**2)) for x in range(-5, 6)] for y in range(-5, 6)]
    )
    return w / w.sum()


def _ref_cs(a: np.ndarray, b: np.ndarray) -> float:
    """ssim_index_new's mcs: per 11x11 window, (2 s12 + C2) / (s1^2 + s2^2 + C2), averaged."""
    w = _ref_window()
    va = np.lib.stride_tricks.sliding_window_view(a, (11, 11))
    vb = np.lib.stride_tricks.sliding_window_view(b, (11, 11))

    def e(v: np.ndarray) -> np.ndarray:
        return np.einsum("ijkl,kl->ij", v, w)

    mu_a, mu_b = e(va), e(vb)
    s11 = e(va * va) - mu_a**2
    s22 = e(vb * vb) - mu_b**2
    s12 = e(va * vb) - mu_a * mu_b
    c2 = (0.03 * 255) ** 2
    return float(np.mean((2 * s12 + c2) / (s11 + s22 + c2)))


def _ref_normalize(bands: Any) -> list[np.ndarray]:
    """norm_sender_normalized.m with a per-pixel loop over the neighbourhood vectors."""
    out = []
    for scale in range(2):
        for orien in range(6):
            aux = bands[scale][orien]
            nsy, nsx = aux.shape
            has_parent = scale == 0 and orien < 5  # nband < Nband - Nor, nband = 2..7
            up = imresize(bands[1][orien], scale=2.0)[:nsy, :nsx] if has_parent else None
            vectors, centre = [], []
            for x in range(1, nsx - 1):  # column-major, as o_c(:)
                for y in range(1, nsy - 1):
                    v = [aux[y + dy, x + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
                    if up is not None:
                        v.append(up[y, x])
                    v += [bands[scale][n][y, x] for n in range(6) if n != orien]
                    vectors.append(v)
                    centre.append(aux[y, x])
            y_mat = np.array(vectors)
            cov = y_mat.T @ y_mat / len(vectors)
            p = np.linalg.pinv(cov)
            n_nb = 9 + int(has_parent)
            z = np.sqrt(np.einsum("ij,jk,ik->i", y_mat, p, y_mat) / n_nb)
            c = np.array(centre)
            g = ((c - c.mean()) / z).reshape(nsx - 2, nsy - 2).T
            gb = 16 // 2**scale
            g = g[gb : g.shape[0] - gb, gb : g.shape[1] - gb]
            out.append(g - g.mean())
    return out


def _ref_gsm(gray: np.ndarray) -> np.ndarray:
    """global_gsm.m on top of the library's steerable pyramid (checked by the golden test)."""
    pyramid = nrqm_pyramid.steerable_pyramid(gray)
    sub = _ref_normalize(pyramid.bands)
    f = [_ref_ggd(b) for b in sub]
    f += [_ref_ggd(np.concatenate([sub[i].ravel(), sub[i + 6].ravel()])) for i in range(6)]
    hp = pyramid.highpass
    f += [_ref_cs(imresize(band, output_shape=hp.shape), hp) for lv in pyramid.bands for band in lv]
    f += [_ref_cs(sub[i], sub[j]) for i in range(6) for j in range(i + 1, 6)]
    return np.array(f)


def _ref_y(rgb_uint8: np.ndarray) -> np.ndarray:
    r, g, b = (rgb_uint8[..., i].astype(np.float64) for i in range(3))
    return np.floor(16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255 + 0.5)


def _data_crop(root: Path, rel: str, top: int, left: int, h: int = 84, w: int = 96) -> np.ndarray:
    """A uint8 Y crop of a data-root image (84x96: just above Ma's minimum size)."""
    rgb = read_image(root / rel).rgb.permute(1, 2, 0).double().numpy()
    y = _ref_y(np.floor(np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
    return y[top : top + h, left : left + w].astype(np.uint8)


_CROPS = [("Set14/HR/baboon.png", 200, 150), ("BSD100/HR/3096.png", 100, 200)]


@pytest.mark.data
@pytest.mark.parametrize(("rel", "top", "left"), _CROPS)
def test_features_match_loop_references_on_real_images(
    data_root: Path, rel: str, top: int, left: int
) -> None:
    gray = _data_crop(data_root, rel, top, left)
    got = ma_features(gray)
    im1 = gray / 255.0
    im2 = _ref_gauss_half(im1)
    im3 = _ref_gauss_half(im2)
    np.testing.assert_allclose(nrqm_blocks.gaussian_half(im1), im2, rtol=1e-13, atol=1e-15)
    want_dct = [v for im in (im1, im2, im3) for v in _ref_block_dct(im)]
    np.testing.assert_allclose(got.dct, want_dct, rtol=1e-10, atol=0)
    want_svd = np.concatenate([_ref_svd(im) for im in (im1, im2, im3)])
    np.testing.assert_allclose(got.svd, want_svd, rtol=1e-10, atol=0)
    np.testing.assert_allclose(got.gsm, _ref_gsm(gray.astype(np.float64)), rtol=1e-9, atol=0)
    # A natural image: DCT shapes well below Gaussian, normalised bands near Gaussian.
    assert 0.1 < got.dct[1] < 2.0
    assert np.all((got.gsm[:12] > 0.5) & (got.gsm[:12] < 4.0))


def test_ggd_shape_table_search_equals_brute_force() -> None:
    rng = np.random.default_rng(3)
    r = nrqm_blocks._GGD_R
    rho = np.concatenate(
        [
            rng.uniform(r[-1], r[0], 2000),
            r[[0, 1, 500, 9969, 9970]],  # table values themselves
            (r[:-1] + r[1:])[[0, 10, 4000]] / 2,  # midpoints
            [r[0] * 10, 1e30, r[-1] / 2, 0.0, math.nan],  # beyond both ends, NaN
        ]
    )
    got = nrqm_blocks._nearest_ggd_index(rho)
    with np.errstate(invalid="ignore"):
        want = [0 if math.isnan(v) else int(np.argmin(np.abs(v - r))) for v in rho]
    np.testing.assert_array_equal(got, want)
    grid = nrqm_blocks._GGD_G
    assert grid.size == 9971
    assert grid[0] == 0.03
    assert grid[-1] == 10.0
    np.testing.assert_allclose(grid, _REF_G, rtol=1e-14)


def test_ggd_shape_recovers_known_distributions() -> None:
    rng = np.random.default_rng(0)
    x = np.stack([rng.standard_normal(200_000), rng.laplace(size=200_000)])
    gauss, laplace = nrqm_blocks.ggd_shape(x)
    assert gauss == pytest.approx(2.0, abs=0.05)
    assert laplace == pytest.approx(1.0, abs=0.05)


def test_mirror_imresize_matches_matlab_contributions() -> None:
    """The R2017a+ enlargement against MATLAB's contributions() written out per output pixel."""
    rng = np.random.default_rng(1)
    x = rng.random((7, 9))
    got = imresize(x, output_shape=(13, 20), edge="mirror")

    def cubic(t: float) -> float:
        t = abs(t)
        if t <= 1:
            return 1.5 * t**3 - 2.5 * t**2 + 1
        return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2 if t <= 2 else 0.0

    def axis_matrix(n_in: int, n_out: int) -> np.ndarray:
        aux = [*range(1, n_in + 1), *range(n_in, 0, -1)]
        m = np.zeros((n_out, n_in))
        s = n_out / n_in
        for i in range(1, n_out + 1):
            u = i / s + 0.5 * (1 - 1 / s)
            taps = [math.floor(u - 2) + k for k in range(6)]
            wts = [cubic(u - j) for j in taps]
            for j, wj in zip(taps, wts, strict=True):
                m[i - 1, aux[(j - 1) % len(aux)] - 1] += wj / sum(wts)
        return m

    want = axis_matrix(7, 13) @ x @ axis_matrix(9, 20).T
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    # Only the first/last output rows and columns see the border rule.
    repl = imresize(x, output_shape=(13, 20), edge="replicate")
    np.testing.assert_allclose(repl[2:-2, 2:-2], got[2:-2, 2:-2], rtol=1e-12)
    # The finer scale's bands are resized to their own size: MATLAB returns them unchanged.
    np.testing.assert_array_equal(imresize(x, output_shape=(7, 9), edge="mirror"), x)
    np.testing.assert_array_equal(imresize(x, output_shape=(7, 9)), x)


def test_point_op_interpolates_and_extrapolates_linearly() -> None:
    lut = np.array([0.0, 1.0, 4.0, 9.0])  # at x = 10, 12, 14, 16
    v = np.array([10.0, 11.0, 13.5, 16.0, 9.0, 18.0])
    got = nrqm_pyramid._point_op(v, lut, 10.0, 2.0)
    np.testing.assert_allclose(got, [0.0, 0.5, 3.25, 9.0, -0.5, 14.0])


# --- the model file: a synthetic forest in the release's format -----------------------------------


def _random_forest(
    rng: np.random.Generator, center: np.ndarray, n_trees: int = 7, nrnodes: int = 31
) -> dict[str, Any]:
    """regRF_train's fields for random trees laid out as randomForest does (children appended)."""
    n_features = center.size
    l_dau = np.zeros((nrnodes, n_trees), np.int32)
    r_dau = np.zeros((nrnodes, n_trees), np.int32)
    status = np.zeros((nrnodes, n_trees), np.int8)
    mbest = np.zeros((nrnodes, n_trees), np.int32)
    upper = np.zeros((nrnodes, n_trees))
    avnode = np.zeros((nrnodes, n_trees))
    ndtree = np.zeros((n_trees, 1), np.int32)
    for t in range(n_trees):
        status[0, t] = -2  # NODE_TOSPLIT
        ncur = 0
        for k in range(nrnodes):
            if status[k, t] != -2:
                continue
            avnode[k, t] = rng.normal(5, 2)
            if ncur + 2 < nrnodes and rng.random() < 0.75:
                m = int(rng.integers(n_features))
                mbest[k, t] = m + 1
                upper[k, t] = center[m] * (1 + rng.normal(0, 0.05)) + rng.normal(0, 1e-3)
                l_dau[k, t], r_dau[k, t] = ncur + 2, ncur + 3  # 1-based
                status[ncur + 1, t] = status[ncur + 2, t] = -2
                status[k, t] = -3  # NODE_INTERIOR
                ncur += 2
            else:
                status[k, t] = -1  # NODE_TERMINAL
        ndtree[t] = ncur + 1
    return {
        "lDau": l_dau,
        "rDau": r_dau,
        "nodestatus": status,
        "nrnodes": float(nrnodes),
        "upper": upper,
        "avnode": avnode,
        "mbest": mbest,
        "ndtree": ndtree,
        "ntree": float(n_trees),
        "coef": np.zeros((2, 1)),
    }


def _walk_forest(f: dict[str, Any], x: np.ndarray) -> float:
    """mexRF_predict: follow nodestatus until NODE_TERMINAL, sum the trees, divide, bias-correct."""
    total = 0.0
    for t in range(int(f["ntree"])):
        k = 0
        while f["nodestatus"][k, t] != -1:
            m = f["mbest"][k, t] - 1
            k = f["lDau"][k, t] - 1 if x[m] <= f["upper"][k, t] else f["rDau"][k, t] - 1
        total += f["avnode"][k, t]
    y = total / int(f["ntree"])
    coef = np.ravel(f["coef"])
    return coef[0] + coef[1] * y if np.any(coef != 0) else y


_LINEAR = np.array([1.5, 0.4, 0.3, 0.2])


def _packed_char_status(status: np.ndarray) -> np.ndarray:
    """nodestatus as the training MEX leaves it: int8 values packed 2 per char of a char array."""
    nr, nt = status.shape
    raw = status.astype(np.int8).tobytes(order="F") + bytes(nr * nt)  # the second half is unused
    units = np.frombuffer(raw, dtype="<u2")
    return np.array([chr(u) for u in units]).reshape((nr, nt), order="F")


def _write_model(
    path: Path, forests: list[dict[str, Any]], *, shape: tuple[int, int] = (3, 1)
) -> Path:
    """model.mat as the release saves it; the last forest's nodestatus is a packed char array."""
    cells = np.empty(shape, dtype=object)
    for i, f in enumerate(forests):
        saved = dict(f)
        if i == 2 and "nodestatus" in f:
            saved["nodestatus"] = _packed_char_status(f["nodestatus"])
        cells[np.unravel_index(i, shape, order="F")] = saved
    scipy.io.savemat(path, {"model": {"rf": cells, "linear": _LINEAR.reshape(4, 1)}})
    return path


@pytest.fixture(scope="module")
def sample() -> np.ndarray:
    """A real photograph (scikit-image's chelsea, Y, 8 bit) shaved to 120x160."""
    return _pirm_y(skdata.chelsea())[60:180, 100:260]


@pytest.fixture(scope="module")
def sample_features(sample: np.ndarray) -> nrqm.MaFeatures:
    return ma_features(sample)


@pytest.fixture(scope="module")
def forests(sample_features: nrqm.MaFeatures) -> list[dict[str, Any]]:
    rng = np.random.default_rng(7)
    return [_random_forest(rng, x) for x in sample_features.groups()]


@pytest.fixture
def model_file(tmp_path: Path, forests: list[dict[str, Any]]) -> Path:
    return _write_model(tmp_path / "model.mat", forests)


def test_forests_match_the_tree_walk(
    model_file: Path, forests: list[dict[str, Any]], sample_features: nrqm.MaFeatures
) -> None:
    model = load_ma_model(model_file)
    rng = np.random.default_rng(11)
    for forest, f, x in zip(model.forests, forests, sample_features.groups(), strict=True):
        assert forest.n_trees == 7
        assert forest.n_features == x.size
        probes = [x, *(x * (1 + rng.normal(0, 0.05, x.size)) for _ in range(20))]
        probes.append(f["upper"][0, 0] * np.ones(x.size))  # x == split goes left
        for p in probes:
            assert forest.predict(p) == pytest.approx(_walk_forest(f, p), rel=1e-14, abs=1e-14)
        outputs = {forest.predict(p) for p in probes}
        assert len(outputs) > 3  # the probes really take different paths
    with pytest.raises(ValueError, match="expects 18 features"):
        model.forests[0].predict(np.zeros(17))


def test_ma_score_runs_features_forests_and_linear_regression(
    model_file: Path,
    forests: list[dict[str, Any]],
    sample: np.ndarray,
    sample_features: nrqm.MaFeatures,
) -> None:
    s = [_walk_forest(f, x) for f, x in zip(forests, sample_features.groups(), strict=True)]
    want = _LINEAR[0] + _LINEAR[1] * s[0] + _LINEAR[2] * s[1] + _LINEAR[3] * s[2]
    got = ma_score(sample, model=model_file)
    assert got == pytest.approx(want, rel=1e-13)
    model = load_ma_model(model_file)
    assert model.forest_outputs(sample_features) == pytest.approx(s, rel=1e-13)
    assert ma_score(sample, model=model) == got  # a loaded model is accepted as is
    # RGB in [0, 1] is scored on its Y channel; crop_border equals cropping by hand.
    rgb = skdata.chelsea()[64:184, 104:264]
    assert ma_score(rgb, model=model) == ma_score(rgb.astype(np.float64) / 255, model=model)
    assert ma_score(sample, crop_border=5, model=model) == ma_score(sample[5:-5, 5:-5], model=model)


def test_tensor_batches_match_numpy(model_file: Path, sample: np.ndarray) -> None:
    a = torch.from_numpy(sample / 255.0).float()[None]
    b = torch.flip(a, dims=(-1,))
    batch = torch.stack([a, b])
    values = ma_score(batch, model=model_file)
    assert values.shape == (2,)
    assert values.dtype == torch.float32
    for value, img in zip(values, (a, b), strict=True):
        gray = img.permute(1, 2, 0).numpy()  # (H, W, 1): a gray image, as the tensor's channel
        assert float(value) == pytest.approx(ma_score(gray, model=model_file), rel=1e-6)
    single = ma_score(a.double(), model=model_file)
    assert single.ndim == 0
    assert single.dtype == torch.float64


def test_bias_correction_and_cell_orientation(
    tmp_path: Path, forests: list[dict[str, Any]], sample_features: nrqm.MaFeatures
) -> None:
    corrected = [dict(f) for f in forests]
    corrected[1]["coef"] = np.array([[0.5], [2.0]])
    model = load_ma_model(_write_model(tmp_path / "row.mat", corrected, shape=(1, 3)))
    x = sample_features.gsm
    assert model.forests[1].predict(x) == pytest.approx(_walk_forest(corrected[1], x), rel=1e-14)
    plain = _walk_forest(forests[1], x)
    assert model.forests[1].predict(x) == pytest.approx(0.5 + 2.0 * plain, rel=1e-14)


def test_missing_model_raises_before_any_feature_is_computed(
    tmp_path: Path, sample: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object) -> None:
        raise AssertionError("features computed without a model")

    monkeypatch.setattr(nrqm, "features_of_luma", fail)
    with pytest.raises(AssetNotFoundError, match=MA_MODEL.filename) as info:
        ma_score(sample, model=tmp_path / "nope.mat")
    message = str(info.value)
    assert "nope.mat' does not exist" in message
    assert isinstance(info.value, FileNotFoundError)


def test_default_model_not_here_raises_and_is_never_downloaded(
    tmp_path: Path, sample: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path))
    monkeypatch.setenv("SUPERRES_DATA", str(tmp_path / "data"))
    with pytest.raises(AssetNotFoundError, match="no pinned sha256") as info:
        ma_score(sample)
    message = str(info.value)
    assert MA_MODEL.urls[0] in message
    assert str(tmp_path / "hub" / MA_MODEL.filename) in message
    assert "--ma-model" in message
    with pytest.raises(AssetNotFoundError, match=MA_MODEL.filename):
        perceptual_index(np.zeros((128, 128)))


def test_default_model_comes_from_the_hub_cache(
    tmp_path: Path, model_file: Path, sample: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "hub").mkdir(parents=True)
    (tmp_path / "cache" / "hub" / MA_MODEL.filename).write_bytes(model_file.read_bytes())
    assert ma_score(sample) == ma_score(sample, model=model_file)


def test_invalid_model_files_are_named(tmp_path: Path, forests: list[dict[str, Any]]) -> None:
    garbage = tmp_path / "garbage.mat"
    garbage.write_bytes(b"not a mat file" * 20)
    with pytest.raises(InvalidAssetError, match="cannot read"):
        load_ma_model(garbage)

    hdf5 = tmp_path / "v73.mat"  # the 128-byte header of a MATLAB 7.3 file, then HDF5 data
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5"
    hdf5.write_bytes(header.ljust(116) + b"\x00" * 8 + b"\x00\x02IM" + b"\x89HDF\r\n\x1a\n" * 8)
    with pytest.raises(InvalidAssetError, match=r"v7\.3"):
        load_ma_model(hdf5)

    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"weights": np.ones(3)})
    with pytest.raises(InvalidAssetError, match="no variable 'model'"):
        load_ma_model(other)

    def broken(name: str, **changes: Any) -> Path:
        fs = [dict(f) for f in forests]
        fs[0].update(changes)
        return _write_model(tmp_path / f"{name}.mat", fs)

    no_field = [dict(f) for f in forests]
    del no_field[2]["avnode"]
    with pytest.raises(InvalidAssetError, match="avnode"):
        load_ma_model(_write_model(tmp_path / "no_field.mat", no_field))
    with pytest.raises(InvalidAssetError, match=r"rf\{1\}"):
        load_ma_model(broken("var", mbest=forests[0]["mbest"] * 0 + 19))  # only 18 features
    cycle = forests[0]["lDau"].copy()
    cycle[0, 0] = 1  # the root as its own child
    with pytest.raises(InvalidAssetError, match="children must follow their parent"):
        load_ma_model(broken("cycle", lDau=cycle))
    with pytest.raises(InvalidAssetError, match="one shape"):
        load_ma_model(broken("shape", upper=forests[0]["upper"][:-1]))

    two = tmp_path / "two.mat"
    cells = np.empty((2, 1), dtype=object)
    cells[0, 0], cells[1, 0] = forests[0], forests[1]
    scipy.io.savemat(two, {"model": {"rf": cells, "linear": _LINEAR.reshape(4, 1)}})
    with pytest.raises(InvalidAssetError, match="cell of 3 forests"):
        load_ma_model(two)
    short = tmp_path / "short.mat"
    cells3 = np.empty((3, 1), dtype=object)
    for i in range(3):
        cells3[i, 0] = forests[i]
    scipy.io.savemat(short, {"model": {"rf": cells3, "linear": np.ones((3, 1))}})
    with pytest.raises(InvalidAssetError, match="4 finite weights"):
        load_ma_model(short)


# --- Perceptual Index -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def niqe_params(data_root: Path) -> Path:
    path = data_root / get_asset("niqe/pristine").data_paths[0]
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.mark.data
def test_perceptual_index_is_the_pirm_formula(model_file: Path, niqe_params: Path) -> None:
    rgb = skdata.chelsea()[50:170, 100:250]
    pi = perceptual_index(rgb, crop_border=4, ma_model=model_file, niqe_params=niqe_params)
    ma = ma_score(rgb, crop_border=4, model=model_file)
    nq = niqe(rgb, crop_border=4, params=niqe_params)
    assert pi == pytest.approx(((10 - ma) + nq) / 2, rel=1e-12)
    batch = torch.from_numpy(rgb / 255.0).permute(2, 0, 1)[None]
    values = perceptual_index(batch, crop_border=4, ma_model=model_file, niqe_params=niqe_params)
    assert values.shape == (1,)
    assert values.dtype == torch.float64
    assert float(values[0]) == pytest.approx(pi, rel=1e-12)


@pytest.mark.data
def test_perceptual_index_needs_niqe_size(model_file: Path, niqe_params: Path) -> None:
    with pytest.raises(ImageTooSmallError, match="96x96"):
        perceptual_index(
            np.zeros((100, 100)), crop_border=4, ma_model=model_file, niqe_params=niqe_params
        )


# --- input validation -----------------------------------------------------------------------------


def test_inputs_are_validated(model_file: Path) -> None:
    with pytest.raises(ImageTooSmallError, match="45 pixels"):
        ma_features(np.zeros((44, 200)))
    with pytest.raises(ImageTooSmallError, match="25 5x5 patches"):
        ma_score(np.zeros((46, 100)), model=model_file)
    with pytest.raises(ImageTooSmallError, match="crop_border=4"):
        ma_features(np.zeros((90, 90)), crop_border=4)
    with pytest.raises(InvalidImageError, match="shape"):
        ma_score(np.zeros((100, 100, 4)), model=model_file)
    with pytest.raises(InvalidImageError, match="dtype"):
        ma_features(np.zeros((100, 100), dtype=np.int32))
    with pytest.raises(InvalidImageError, match="NaN"):
        ma_features(np.full((100, 100), np.nan))
    with pytest.raises(InvalidImageError, match="floating-point"):
        ma_score(torch.zeros(1, 3, 100, 100, dtype=torch.uint8), model=model_file)
    with pytest.raises(InvalidImageError, match="torch tensor"):
        ma_score(torch.zeros(1, 2, 100, 100), model=model_file)
    with pytest.raises(InvalidImageError, match="numpy array"):
        ma_features(torch.zeros(100, 100))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="crop_border"):
        ma_score(np.zeros((100, 100)), crop_border=-1, model=model_file)
    with pytest.raises(ValueError, match="imresize_border"):
        ma_features(np.zeros((100, 100)), imresize_border="symmetric")  # type: ignore[arg-type]


def test_all_black_image_has_no_score(model_file: Path) -> None:
    """Exactly zero pyramid bands: MATLAB's normalisation fails; we give NaN (features raise)."""
    assert math.isnan(ma_score(np.zeros((100, 100)), model=model_file))
    with pytest.raises(InvalidImageError, match="exactly zero"):
        ma_features(np.zeros((100, 100)))
